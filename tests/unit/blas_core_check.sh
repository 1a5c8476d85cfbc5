#!/bin/bash
# blas_core_check.sh CFA - the BLAS kernels the engine's programs run on
# (core/src/blas_cpu.c). On a CPU with AVX2 + FMA, `cfa info` must report an
# OpenBLAS core that uses them (never the SSE3 fall-backs), whatever OpenBLAS
# detects by itself; a user's OPENBLAS_CORETYPE must be kept as given.
set -u
cfa="$1"
fail=0
unset OPENBLAS_CORETYPE CFA_BLAS_KEEP
core=$("$cfa" info | awk '$1 == "blas_core" {print $2}')
native=$(CFA_BLAS_KEEP=1 "$cfa" info | awk '$1 == "blas_core" {print $2}')
echo "OpenBLAS core: $core (OpenBLAS's own choice: $native)"
if [ "$core" = none ]; then
  echo "the BLAS is not OpenBLAS: nothing to check"
  exit 0
fi
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  case "$core" in
    Prescott|Core2|Penryn|Dunnington|Nehalem|Atom|Sandybridge|Unknown)
      echo "FAIL: AVX2 CPU but OpenBLAS runs $core kernels"; fail=1 ;;
  esac
fi
user=$(OPENBLAS_CORETYPE=Haswell "$cfa" info | awk '$1 == "blas_core" {print $2}')
if [ "$user" != Haswell ]; then
  echo "FAIL: OPENBLAS_CORETYPE=Haswell gave $user"; fail=1
fi
[ $fail = 0 ] && echo "ok"
exit $fail
