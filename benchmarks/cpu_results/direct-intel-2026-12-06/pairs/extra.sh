#!/usr/bin/env bash
# What was measured beside the final direct kernels (two output channels per pass), one quiet
# window (commit dbd4e78, where the CPU chose direct layers by weight size: at most 512 and 5 wide;
# since the rule of kernels/cpu/__init__.py, --direct-max only caps it): the kernels alone, the
# direct-kernel limit 512 against 2400 weights, the wide layout
# for the small planes, a larger kept-matrix limit (whole training steps in one process each).
cd "$(dirname "$0")/../../../.."; . .venv/bin/activate
O=benchmarks/cpu_results/direct-intel-2026-12-06/pairs; P=benchmarks/cpu_results/direct-intel-2026-12-06/probes
{ date -u; uptime; git rev-parse --short HEAD; } > $O/extra_env.txt
python $P/kernels_one_thread.py > $O/kernels_one_thread.txt 2>&1
for m in 512 2400; do
  python -m benchmarks.fusion_ab --switch direct --direct-max $m --nets tutorial deconv net2 --batch-sizes 64 256 \
    --rounds 7 > $O/fusion_ab_direct_max$m.txt 2>&1
done
python -m benchmarks.fusion_ab --switch wide --wide-max-pixels 100 --nets tutorial deconv --batch-sizes 64 256 \
  --rounds 7 > $O/fusion_ab_wide100.txt 2>&1
python $P/keep_ab.py 16 7 tutorial deconv > $O/keep_ab_16MiB.txt 2>&1
{ date -u; uptime; } >> $O/extra_env.txt
