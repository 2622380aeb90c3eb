set terminal pngcairo size 960,600 noenhanced
set grid
set key outside right
set output 'training.png'
set title 'pre-training'
set xlabel 'step'
set ylabel 'loss (nats/token)'
plot 'training.dat' index 0 using 1:2 with linespoints lw 2 pt 1 title "pretrain/dense train", 'training.dat' index 1 using 1:2 with points pt 7 ps 1.5 title "pretrain/dense validation", 'training.dat' index 2 using 1:2 with linespoints lw 2 pt 1 title "pretrain/sdm train", 'training.dat' index 3 using 1:2 with points pt 7 ps 1.5 title "pretrain/sdm validation"
