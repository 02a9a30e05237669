"""The register-blocked forward's tile rules (``direct_blocked.py``): the tile of output channels
x vectors of positions, where the channels-in-lanes kernel takes over, whether a tile's vectors are
whole output rows, and the constants of each compiled copy. Pure Python on shapes, run once per
shape (``direct_blocked.forward``'s plans), kept apart from the kernels they choose."""

from __future__ import annotations

from .simd import LANES

# forward tile: 8 output channels x 2 vectors of positions with 32 vector registers (AVX-512);
# with 16 (AVX2), 3 x 4: 12 independent sums hide the multiply-add's latency, where 4 x 2's 8
# ran at 25-40 GFLOP/s against 50-67 on a Zen 3 core (benchmarks/notes/cpu-direct.md, "Eight
# lanes"); SLOTS: the accumulator slots a tile may use besides the loaded vectors
FWD_OB, FWD_QV = (8, 2) if LANES == 16 else (3, 4)
SLOTS = 24 if LANES == 16 else 12
# the positions-in-lanes forward's vectors: whole output rows where a row is a whole number of
# vectors (no junk columns; ``_forward_impl``), else the flat span on the padded pitch
ROW_VECTORS = True


def forward_channels_tile(o: int):
    """(OV, P) of the channels-in-lanes forward for o output channels, or None where it is not
    used (fewer than 2 * LANES channels: too few multiply-adds per broadcast)."""
    ov = min(-(-o // LANES), 4 if LANES == 16 else 2)
    return None if ov < 2 else (ov, SLOTS // ov)


def channels_in_lanes(c_in: int, c_out: int, kh: int, kw: int) -> bool:
    """Whether a forward with c_in input and c_out output channels takes the channels-in-lanes
    kernel: with 16 lanes, at least 16 input channels and 64 output channels, or 32 for a 5x5
    kernel or larger (where it was the faster of the two on the nets' layers: benchmarks/notes/
    cpu-direct.md, "Register-blocked direct convolution"); with 8, never (the positions' 3 x 4
    tile beat it on every layer of the nets: 50-67 GFLOP/s against 39-55, "Eight lanes")."""
    return LANES == 16 and c_in >= 16 and (c_out >= 64 or (c_out >= 32 and kh * kw >= 25))


def _positions_consts(kh, kw, ts, ti, tj, sh, sw, rv) -> dict:
    """The constants of a positions-in-lanes forward's compiled copy (``_forward_impl``); ``rv``:
    its vectors are whole output rows (``_row_vectors``)."""
    return dict(OB=FWD_OB, QV=FWD_QV, Q=FWD_QV * LANES, NACC=FWD_OB * FWD_QV, KH=kh, KW=kw, TS=ts, TI=ti, TJ=tj,
                SH=sh, SW=sw, RV=int(rv))


def _row_vectors(oh: int, ow: int, wq: int, kw: int, sw: int) -> bool:
    """Whether the positions-in-lanes forward of an oh x ow output, read from planes of pitch wq
    (before ``_forward_impl`` widens it to fit kw taps at stride sw), takes whole output rows as
    its vectors (``ROW_VECTORS``): where a row is a whole number of vectors and that needs at
    most 4/5 of the tiles of the flat span on the pitch. Net2's and ResNet-20's 8x8 layers need
    2 tiles instead of 3 (forward and input gradient 1.4-1.6x faster), 16x16 with a 5x5 kernel 8
    instead of 10; where the saving was smaller (ResNet-20's 16x16 and 32x32 3x3 layers: 8 of
    9, 32 of 34 tiles) the tile's scattered vectors cost more than they saved
    (benchmarks/notes/cpu-row-vectors.md)."""
    if not ROW_VECTORS or ow % LANES:
        return False
    wq = max(wq, ow + (kw - 1) // sw)
    q = FWD_QV * LANES
    flat, rows = -(-((oh - 1) * wq + ow) // q), -(-(oh * ow) // q)
    return 5 * rows <= 4 * flat
