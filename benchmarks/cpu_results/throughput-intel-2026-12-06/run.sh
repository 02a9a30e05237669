#!/usr/bin/env bash
# issue 19 on this session's VM: Intel Xeon (AVX-512, AMX), 2 vCPUs, 4 MiB L2, OpenBLAS
# autodetected (SkylakeX; no OPENBLAS_* variables). One quiet window, each run a fresh process,
# nothing else running: the throughput table twice, the wide conv layout against the per-sample
# one (per layer and whole steps, in one process, alternating), Net2's conv pieces, its layer
# profiles and the products' floors.
cd "$(dirname "$0")/../../.."; . .venv/bin/activate
O=benchmarks/cpu_results/throughput-intel-2026-12-06; P=$O/probes; mkdir -p $O
{ date -u; uptime; lscpu | grep -E 'Model name|^CPU\(s\)|L2|L3' ; git rev-parse --short HEAD; env | grep OPENBLAS; } > $O/env.txt
python -m benchmarks.throughput --backends numba --nets tutorial deconv net2 --out $O/round-1 --no-plot > $O/round-1.log 2>&1
for b in 4 64; do python $P/wide_layers.py $b 2 9 > $O/wide_layers_b$b.txt 2>&1; done
python -m benchmarks.fusion_ab --switch wide --nets net2 tutorial deconv resnet20 --batch-sizes 4 64 --rounds 9 > $O/fusion_ab_wide.txt 2>&1
python -m benchmarks.fusion_ab --switch wide --wide-max-pixels 256 --nets net2 resnet20 --batch-sizes 4 64 --rounds 9 > $O/fusion_ab_wide_max256.txt 2>&1
for b in 4 64; do
  python $P/net2parts.py $b > $O/net2parts_b$b.txt 2>&1
  python -m benchmarks.layer_profile --backend numba --net net2 --batch-size $b --out $O > $O/layer_profile_net2_b$b.log 2>&1
  python -m benchmarks.gemm_ceiling --net net2 --batch-size $b > $O/gemm_ceiling_net2_b$b.txt 2>&1
done
python $P/wide_products.py > $O/wide_products.txt 2>&1
python $P/split_wake.py > $O/split_wake.txt 2>&1
python $P/sched_ab.py 7acfaa9 9 net2 resnet20 tutorial deconv > $O/sched_ab_dw_accumulate.txt 2>&1
python -m benchmarks.throughput --backends numba --nets tutorial deconv net2 --out $O/round-2 --no-plot > $O/round-2.log 2>&1
{ date -u; uptime; } >> $O/env.txt
