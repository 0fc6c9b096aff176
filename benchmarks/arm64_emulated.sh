#!/usr/bin/env bash
# The runtime install on arm64, emulated on an x86-64 Linux host: a Debian arm64 root filesystem
# (mmdebstrap), tf-drnn installed there from aarch64 wheels with no TensorFlow, then under
# qemu-aarch64 -cpu cortex-a53 and -cpu cortex-a76:
#   * benchmarks/on_device.py on every exported file (timings of an EMULATOR, not of a device), and
#   * parity: tf-drnn-separate --model=FILE.tflite on a fixed clip (6 s, 44.1 kHz stereo, full band),
#     its stems compared with the same command's on the x86-64 host.
# The files are exported on the host (tf-drnn-export, needs the train extra; int8 calibrates on
# MIR-1K). Writes docs/benchmarks/arm64_emulated.json and .md (benchmarks/arm64_report.py).
#
#   sudo benchmarks/arm64_emulated.sh                       # both bundled models, float32 and int8
#   sudo MODELS=drnn2_compact CALLS=50 benchmarks/arm64_emulated.sh
#
# Needs root (mmdebstrap into a folder, chroot), and: apt-get install -y mmdebstrap qemu-user-static
# binfmt-support. mmdebstrap runs the arm64 packages' scripts through binfmt_misc (registered here
# if it is not); the runs themselves call qemu-aarch64-static explicitly with -cpu. Settings
# (environment): WORK (default /tmp/tf_drnn_arm64; the root filesystem is kept there and reused),
# SUITE (bookworm), MIRROR, CPUS, MODELS, VARIANTS, CALLS, WARMUP, BLOCKS, DATA_DIR, OUTPUT_DIR.
# Heavy steps run under nice -n 19.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/tf_drnn_arm64}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CPUS=${CPUS:-"cortex-a53 cortex-a76"}
MODELS=${MODELS:-"drnn2_compact drnn2"}
VARIANTS=${VARIANTS:-"float32 int8"}
CALLS=${CALLS:-100}          # per signature under emulation (x86: 10x as many)
WARMUP=${WARMUP:-10}
BLOCKS=${BLOCKS:-3}
DATA_DIR=${DATA_DIR:-$REPO/../shared/MIR-1K}
OUTPUT_DIR=${OUTPUT_DIR:-$REPO/docs/benchmarks}
HOST_PYTHON=${HOST_PYTHON:-python3}
ROOT=$WORK/rootfs
VENV=/opt/tf-drnn               # inside the root filesystem
NICE="nice -n 19"

say() { echo "[arm64] $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap into a folder and chroot need it)"
for tool in mmdebstrap qemu-aarch64-static; do
  command -v "$tool" >/dev/null || die "$tool not found: apt-get install -y mmdebstrap qemu-user-static binfmt-support"
done
QEMU=$(command -v qemu-aarch64-static)
mkdir -p "$WORK"

# --- 1. a Debian arm64 root filesystem with Python 3 ----------------------------------------------
if [ ! -x "$ROOT/usr/bin/python3" ]; then
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    say "registering qemu-aarch64 with binfmt_misc (mmdebstrap runs arm64 package scripts)"
    [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
    update-binfmts --enable qemu-aarch64 || true
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || die "cannot register qemu-aarch64 with binfmt_misc here; \
build the root filesystem elsewhere (mmdebstrap --arch=arm64 --variant=minbase --include=python3,python3-venv \
$SUITE rootfs.tar) and unpack it into $ROOT"
  fi
  say "building the $SUITE arm64 root filesystem in $ROOT (a few minutes)"
  rm -rf "$ROOT"
  $NICE mmdebstrap --quiet --arch=arm64 --variant=minbase --include=python3,python3-venv "$SUITE" "$ROOT" "$MIRROR"
fi
cp "$QEMU" "$ROOT/usr/bin/qemu-aarch64-static"
# /proc and /sys as on a device: LiteRT's XNNPACK delegate (its cpuinfo library) reads the CPU lists
# in /sys and the cores' descriptions in /proc/cpuinfo. qemu-user shows the host's x86 /proc/cpuinfo,
# on which XNNPACK crashes, so each run sees the /proc/cpuinfo of the CPU it emulates (cpuinfo_for).
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/sys" || mount -t sysfs sysfs "$ROOT/sys"
trap 'umount "$ROOT/proc/cpuinfo" 2>/dev/null || true; umount "$ROOT/proc" "$ROOT/sys" 2>/dev/null || true' EXIT
cpuinfo_for() {  # emulated CPU -> a file like its /proc/cpuinfo (Arm's part numbers and feature lists)
  local part features
  case $1 in
    cortex-a53) part=0xd03; features="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid" ;;
    cortex-a55) part=0xd05; features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid \
asimdrdm lrcpc dcpop asimddp" ;;
    cortex-a76) part=0xd0b; features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid \
asimdrdm lrcpc dcpop asimddp" ;;
    *) die "no /proc/cpuinfo description for -cpu $1 (cortex-a53, cortex-a55 or cortex-a76)" ;;
  esac
  local file=$WORK/cpuinfo_$1
  : > "$file"
  for ((i = 0; i < $(nproc --all); i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\n' \
        "$i" "$features" >> "$file"
    printf 'CPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 0\n\n' "$part" >> "$file"
  done
  echo "$file"
}
# arm CPU -> command prefix running an aarch64 program inside the root filesystem
# (a clean environment: the host's PIP_* or PYTHON* settings mean nothing there).
CHROOT=(chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 /usr/bin/qemu-aarch64-static)
arm() { local cpu=$1; shift; $NICE "${CHROOT[@]}" -cpu "$cpu" "$@"; }
PY_VERSION=$(arm max /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
say "arm64 Python $PY_VERSION"

# --- 2. the runtime install there, from aarch64 wheels only ----------------------------------------
WHEELS=$ROOT/wheels
if [ ! -x "$ROOT$VENV/bin/python" ] || [ "$REPO/setup.py" -nt "$ROOT$VENV/installed" ] || \
   [ -n "$(find "$REPO/tf_drnn" -name '*.py' -newer "$ROOT$VENV/installed" 2>/dev/null | head -1)" ]; then
  say "downloading aarch64 wheels and building the tf-drnn wheel"
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  platforms=(--platform manylinux2014_aarch64)
  for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
  $NICE "$HOST_PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WHEELS" "$REPO"
  requirements=$("$HOST_PYTHON" -c 'import sys, zipfile, glob
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/tf_drnn-*.whl")[0])
meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
print(" ".join(l.split(":", 1)[1].strip().replace(" ", "") for l in wheel.read(meta).decode().splitlines()
               if l.startswith("Requires-Dist:") and "extra ==" not in l))' "$WHEELS")
  say "runtime requirements: $requirements"
  $NICE "$HOST_PYTHON" -m pip download --quiet --only-binary=:all: --implementation cp \
      --python-version "$PY_VERSION" "${platforms[@]}" --dest "$WHEELS" pip $requirements
  say "installing tf-drnn into $VENV (arm64, emulated)"
  rm -rf "${ROOT:?}$VENV"
  arm max /usr/bin/python3 -m venv --without-pip "$VENV"
  pip_wheel=$(cd "$WHEELS" && ls pip-*.whl | head -1)
  arm max "$VENV/bin/python" "/wheels/$pip_wheel/pip" install --quiet --no-index --find-links /wheels \
      --disable-pip-version-check tf-drnn
  arm max "$VENV/bin/python" "/wheels/$pip_wheel/pip" list --format=freeze --disable-pip-version-check \
      > "$WORK/arm64_packages.txt"
  touch "$ROOT$VENV/installed"
fi
if grep -qiE '^(tensorflow|keras|librosa)' "$WORK/arm64_packages.txt"; then
  die "the arm64 runtime install pulled in TensorFlow, Keras or librosa"
fi

# --- 3. on the host: the exported files and the fixed clip ----------------------------------------
MODEL_DIR=$WORK/models
mkdir -p "$MODEL_DIR"
files=()
for model in $MODELS; do
  for variant in $VARIANTS; do
    file=$MODEL_DIR/${model}_${variant}.tflite
    if [ ! -f "$file" ]; then
      extra=()
      if [ "$variant" = int8 ]; then
        [ -d "$DATA_DIR/Wavfile" ] || die "int8 calibrates on MIR-1K: set DATA_DIR (no $DATA_DIR/Wavfile)"
        extra=(--data_dir="$DATA_DIR")
      fi
      say "exporting $model $variant on the host"
      (cd "$REPO" && $NICE "$HOST_PYTHON" -m tf_drnn_export.cli --model="$model" --quantization="$variant" \
          "${extra[@]}" --output="$file")
    fi
    files+=("$file")
  done
done
CLIP=$WORK/clip.wav
(cd "$REPO" && "$HOST_PYTHON" -c 'import sys, numpy as np, soundfile
from tf_drnn.synth import sung_like_mixture
left, right = (sung_like_mixture(6.0, 44100, seed=s) for s in (7, 8))
song = np.stack([left[0] + left[1], 0.8 * right[0] + 1.2 * right[1]], axis=1).astype(np.float32)
soundfile.write(sys.argv[1], song, 44100, subtype="FLOAT")' "$CLIP")
GUEST=/tf_drnn_bench  # the files' folder as the emulated runs see it, inside the root filesystem
rm -rf "$ROOT$GUEST" && mkdir -p "$ROOT$GUEST/results"
cp "$REPO/benchmarks/on_device.py" "$CLIP" "$ROOT$GUEST/"
cp -r "$MODEL_DIR" "$ROOT$GUEST/models"

# --- 4. runs: the x86-64 host, then each emulated CPU ---------------------------------------------
RESULTS=$WORK/results
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
run_target() {  # target, its view of $WORK (root), result folder on this host, command prefix...
  local target=$1 root=$2 host_out=$3; shift 3
  local prefix=("$@") out=$root/results/$target calls=$CALLS warmup=$WARMUP
  local label="emulated: qemu-aarch64 -cpu $target (an emulator's timings, not a device's)"
  if [ "$target" = x86_64 ]; then calls=$((CALLS * 10)); warmup=$((WARMUP * 10)); label="x86-64 host (measured)"; fi
  mkdir -p "$host_out"
  local names=() file name start
  for file in "${files[@]}"; do names+=("$root/models/$(basename "$file")"); done
  say "$target: on_device.py ($calls calls per signature)"
  "${prefix[@]}" "$root/on_device.py" --calls="$calls" --warmup="$warmup" --blocks="$BLOCKS" --label="$label" \
      --json="$out/bench.json" "${names[@]}" > /dev/null
  for file in "${names[@]}"; do
    name=$(basename "$file" .tflite)
    say "$target: tf-drnn-separate --model=$name.tflite clip.wav"
    start=$EPOCHREALTIME
    "${prefix[@]}" -m tf_drnn.separate --model="$file" --output_dir="$out/stems/$name" --subtype=FLOAT \
        "$root/clip.wav" > /dev/null
    echo "$name $(seconds_since "$start")" >> "$host_out/separate_seconds.txt"
  done
}
cp "$REPO/benchmarks/on_device.py" "$WORK/"
(cd "$REPO" && run_target x86_64 "$WORK" "$RESULTS/x86_64" $NICE "$HOST_PYTHON")
for cpu in $CPUS; do
  mount --bind "$(cpuinfo_for "$cpu")" "$ROOT/proc/cpuinfo"
  run_target "$cpu" "$GUEST" "$ROOT$GUEST/results/$cpu" $NICE "${CHROOT[@]}" -cpu "$cpu" "$VENV/bin/python"
  umount "$ROOT/proc/cpuinfo"
  cp -r "$ROOT$GUEST/results/$cpu" "$RESULTS/"
done

# --- 5. parity and the report -------------------------------------------------------------------
"$HOST_PYTHON" "$REPO/benchmarks/arm64_report.py" --work="$WORK" --output_dir="$OUTPUT_DIR" --suite="$SUITE" \
    --cpus="${CPUS// /,}"
