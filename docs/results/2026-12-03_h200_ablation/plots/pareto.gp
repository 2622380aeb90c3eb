set terminal pngcairo size 960,600 noenhanced
set grid
set key outside right
set output 'pareto.png'
set title 'average score vs batch-1 decode latency'
set offsets graph 0.05, graph 0.2, graph 0.1, graph 0.1
set xlabel 'decode latency, P50 ms/token'
set ylabel 'average task score (points)'
plot 'pareto.dat' using 1:2:3:4 with yerrorbars pt 7 title 'variant', 'pareto.dat' using 1:2:5 with labels offset 1,1 left notitle, 'pareto_front.dat' using 1:2 with lines lw 2 title 'Pareto front'
