set terminal pngcairo size 960,600 noenhanced
set grid
set key outside right
set output 'scores.png'
set title 'scores per task and variant'
set ylabel 'score (points)'
set xtics rotate by -30 ("M_base" 0, "M_CSP" 1, "M_SDM" 2, "M_SGH" 3, "M_SDM+SGH" 4, "M_full" 5, "M_challenge" 6, "LoRA-all" 7, "IA3-all" 8)
set xrange [-0.5:8.500000]
plot 'scores.dat' index 0 using 1:2:3:4 with yerrorbars pt 7 title "cola", 'scores.dat' index 1 using 1:2:3:4 with yerrorbars pt 7 title "sst2", 'scores.dat' index 2 using 1:2:3:4 with yerrorbars pt 7 title "mrpc", 'scores.dat' index 3 using 1:2:3:4 with yerrorbars pt 7 title "stsb", 'scores.dat' index 4 using 1:2:3:4 with yerrorbars pt 7 title "rte", 'scores.dat' index 5 using 1:2:3:4 with yerrorbars pt 7 title "average"
