build/lm --data=ptb --preset=full --steps=6000 --save-every=250 --keep-last=1 --precision=bf16 --seeds=3 --variants=V --run-dir=results/runs/lm-ptb-6k-seeds/seeds-3_variants-V
