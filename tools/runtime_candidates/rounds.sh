#!/bin/bash
# Behind the report: 1) agreement scores of every candidate (timing-free), 2) interleaved timing rounds with
# torch-fp32 (the reference) after every group of candidates.
cd "$(dirname "$0")" && . .venv/bin/activate
R=torch-fp32
LIST="$R torch-fp32-gemm compile-fp32 compile-fp32-freeze compile-fp32-freeze-gemm compile-fp32-freeze-mat \
  $R ort-basic-t2 ort-ext-t2 ort-all-t2 ort-all-t1 ort-all-t2-gemm ort-all-t1-gemm \
  $R ort-ext-t2-gemm ort-all-t2-gemm-saved ort-all-t2-gemm-static ov-f32-lat ov-f32-lat-gemm \
  $R ov-f32-lat-static ov-f32-lat-static-gemm ov-f32-tput ov-f32-lat-acc $R"
[ "$1" = agree ] && AGREE_ONLY=1 python run_rounds.py 1 0 $LIST
[ "$1" = time ] && python run_rounds.py ${ROUNDS:-3} ${MIN_S:-2} $LIST
