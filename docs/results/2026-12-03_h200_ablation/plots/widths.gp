set terminal pngcairo size 960,600 noenhanced
set grid
set key outside right
set output 'widths.png'
set title 'kept inner width per layer'
set xlabel 'layer'
set xtics 1
set ylabel 'd_inner'
set yrange [0:*]
plot 'widths.dat' index 0 using 1:2 with linespoints lw 2 title "pretrain/dense", 'widths.dat' index 1 using 1:2 with linespoints lw 2 title "csp/dense", 'widths.dat' index 2 using 1:2 with linespoints lw 2 title "prune/sdm", 'widths.dat' index 3 using 1:2 with linespoints lw 2 title "prune/csp-sdm", 'widths.dat' index 4 using 1:2 with linespoints lw 2 title "prune/challenge"
