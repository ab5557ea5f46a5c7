build/lm --data=ptb --preset=full --steps=6000 --save-every=250 --keep-last=1 --precision=bf16 --seeds=1 --variants=V --run-dir=results/runs/lm-ptb-6k-seeds/seeds-1_variants-V
