#!/usr/bin/env bash
# Git over smart HTTP (issue 15), against a real `hubnode serve` on 127.0.0.1, with Debian's git
# and git-lfs as clients:
# (a) `git clone` (pointers only, GIT_LFS_SKIP_SMUDGE=1) of a repo with COMMITS commits (small
#     text changes, plus one LFS file) from the node vs the same bare repository served by git's
#     own `git http-backend` behind a small CGI host (bench/git_http_host.py) — the named
#     baseline. The history is made with `git fast-import`, pushed to the node once with
#     `git push --force` (git-lfs's pre-push hook uploads the LFS object), and served from the
#     scratch repo (after `git gc`, as a server keeps it) by http-backend; both clones must end at
#     the same commit id with COMMITS commits. RUNS alternating runs, medians; one warm-up clone
#     from each first. Server memory: the node's peak RSS (VmHWM, reset through
#     /proc/PID/clear_refs before the clones) against, for git, the largest peak RSS of any one
#     git process the CGI host ran (http-backend, upload-pack, pack-objects: RUSAGE_CHILDREN) and
#     the largest sum of the RSS of the git processes alive at once (sampled every 10 ms).
# (b) `git lfs pull` of the ~1 GB bench model (testmodel --size bench: 4 shards, imported with
#     the Hub's .gitattributes line for *.safetensors) in a fresh pointers-only clone vs a plain
#     download of the same LFS files from the node with curl (/{repo}/resolve/main/{file}), all
#     files at once (the baseline; git-lfs also runs up to 8 transfers at once) and one after
#     another. The node's raw cache is warmed first (two downloads of each file), so every run
#     reads hot files; the node's VmHWM is reset before part (b). Each method's result is
#     compared byte for byte with the generated model once (untimed).
# Prints one table: median seconds, MB/s, × the named baseline of its part.
# Usage: bench/git_bench.sh HUBNODE [WORKDIR]
#   COMMITS=1000 RUNS=3 SIZE=bench (tiny|small|medium for a quick run);
#   ONLY_BASELINES=1 runs only what needs no git support in the node (http-backend clones, curl
#   downloads) and prints "-" for the node's git rows.
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: git_bench.sh HUBNODE [WORKDIR]}")
HERE=$(cd "$(dirname "$0")" && pwd)
COMMITS=${COMMITS:-1000}
RUNS=${RUNS:-3}
SIZE=${SIZE:-bench}
ONLY_BASELINES=${ONLY_BASELINES:-0}
if [[ -n "${2:-}" ]]; then
  WORK=$2; rm -rf "$WORK"; mkdir -p "$WORK"; WORK=$(realpath "$WORK"); KEEP=1
else
  WORK=$(mktemp -d); KEEP=0
fi
PID= HOSTPID=
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [[ -n "$HOSTPID" ]] && kill "$HOSTPID" 2>/dev/null && wait "$HOSTPID" 2>/dev/null
  [[ $KEEP == 1 ]] || rm -rf "$WORK"
  true
}
trap cleanup EXIT
cd "$WORK"
for tool in git git-lfs curl /usr/bin/python3; do
  command -v "$tool" > /dev/null || { echo "git_bench: needs $tool (apt-get install git git-lfs curl python3)" >&2; exit 1; }
done

# git and git-lfs see only this run's configuration; nothing prompts; stalls end.
export HOME=$WORK/home GIT_CONFIG_GLOBAL=$WORK/home/.gitconfig GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export GIT_HTTP_LOW_SPEED_LIMIT=1000 GIT_HTTP_LOW_SPEED_TIME=60
mkdir -p "$HOME"
git lfs install --skip-repo > /dev/null
git config --global user.name bench
git config --global user.email bench@localhost
git config --global init.defaultBranch main
git config --global lfs.locksverify false

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }

# ---- the repository with COMMITS commits ----------------------------------------------------
# Each commit rewrites README.md (an apache-2.0 card, so the node's policy releases the push) and
# config.json and appends to CHANGELOG.md; the first also adds .gitattributes and weights.bin, an
# LFS pointer to 1 MiB of deterministic noise, whose object is put where git-lfs keeps it.
git init -q hist
/usr/bin/python3 - "$COMMITS" hist <<'PY'
import hashlib, os, subprocess, sys
n, repo = int(sys.argv[1]), sys.argv[2]
noise = hashlib.shake_256(b"git_bench weights").digest(1 << 20)
oid = hashlib.sha256(noise).hexdigest()
d = os.path.join(repo, ".git", "lfs", "objects", oid[:2], oid[2:4])
os.makedirs(d, exist_ok=True)
with open(os.path.join(d, oid), "wb") as f:
    f.write(noise)
pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(noise)}\n".encode()
attrs = b"*.bin filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
out = []
def data(b):
    out.append(b"data %d\n" % len(b) + b + b"\n")
changelog = b""
for i in range(1, n + 1):
    changelog += b"- revision %d: tuned the learning rate to %d.%03de-5\n" % (i, i % 7 + 1, i * 37 % 1000)
    out.append(b"commit refs/heads/main\n")
    t = 1700000000 + i * 60
    out.append(b"author Bench <bench@localhost> %d +0000\ncommitter Bench <bench@localhost> %d +0000\n" % (t, t))
    data(b"revision %d\n" % i)
    if i == 1:   # later commits follow the branch's tip (fast-import chains them)
        out.append(b"M 100644 inline .gitattributes\n"); data(attrs)
        out.append(b"M 100644 inline weights.bin\n"); data(pointer)
    out.append(b"M 100644 inline README.md\n")
    data(b"---\nlicense: apache-2.0\n---\n# bench/hist\n\nRevision %d of a model with a long history.\n" % i)
    out.append(b"M 100644 inline config.json\n")
    data(b'{"revision": %d, "learning_rate": %d.%03de-5, "hidden_size": 64}\n' % (i, i % 7 + 1, i * 37 % 1000))
    out.append(b"M 100644 inline CHANGELOG.md\n"); data(changelog)
subprocess.run(["git", "-C", repo, "fast-import", "--quiet"], input=b"".join(out), check=True)
subprocess.run(["git", "-C", repo, "checkout", "-q", "main"], check=True, env=dict(os.environ, GIT_LFS_SKIP_SMUDGE="1"))
PY
git -C hist lfs update > /dev/null   # git-lfs's pre-push hook: the push uploads weights.bin first
HEAD=$(git -C hist rev-parse HEAD)
[[ $(git -C hist rev-list --count HEAD) == "$COMMITS" ]]
mkdir -p root/bench
git clone -q --bare hist root/bench/hist.git
git -C root/bench/hist.git gc --quiet

# ---- the node ---------------------------------------------------------------------------------
"$HUBNODE" -q testmodel --family olmoe --size "$SIZE" --seed 1 --out model > /dev/null
# The Hub's .gitattributes line, as every repo made through the API has it: without it git-lfs's
# checkout hands the 1 GB to `git update-index` as plain blobs (~40 s of zlib on 2 cores, and the
# files show as changed), which would measure the repo, not the node.
printf '*.safetensors filter=lfs diff=lfs merge=lfs -text\n' > model/.gitattributes
mapfile -t LFS_FILES < <(cd model && ls ./*.safetensors | sed 's|^\./||')
LFS_BYTES=$(cd model && cat "${LFS_FILES[@]}" | wc -c)
hub import model --repo bench/m > /dev/null
TW=$(hub token create --name bench --scope write --namespace bench)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > serve.out 2> serve.err &
PID=$!
for _ in $(seq 200); do grep -qs "serving http" serve.out && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' serve.out)
[[ -n "$U" ]] || { cat serve.err >&2; exit 1; }
UA=${U/http:\/\//http:\/\/bench:$TW@}

if [[ $ONLY_BASELINES != 1 ]]; then
  curl -sf -m 30 -X POST "$U/api/repos/create" -H "Authorization: Bearer $TW" -d '{"name":"hist","organization":"bench"}' > /dev/null
  # The node's new repo starts with its own initial commit: the history replaces it (a writer's force push).
  timeout 600 git -C hist push -q --force "$UA/bench/hist" main 2> push.err || { cat push.err >&2; exit 1; }
fi

/usr/bin/python3 "$HERE/git_http_host.py" "$WORK/root" > host.out 2> host.err &
HOSTPID=$!
for _ in $(seq 200); do grep -qs serving host.out && break; sleep 0.05; done
G=$(sed -n 's/^serving \(http[^ ]*\).*/\1/p' host.out)
[[ -n "$G" ]] || { cat host.err >&2; exit 1; }

# clone_time URL DIR: seconds for a pointers-only clone; checks its head and history.
clone_time() {
  local t0 t1
  rm -rf "$2"
  t0=$(now)
  GIT_LFS_SKIP_SMUDGE=1 timeout 600 git clone -q "$1" "$2"
  t1=$(now)
  [[ $(git -C "$2" rev-parse HEAD) == "$HEAD" && $(git -C "$2" rev-list --count HEAD) == "$COMMITS" ]] ||
    { echo "git_bench: clone of $1 is not the generated history" >&2; exit 1; }
  secs "$t0" "$t1"
}
clone_time "$G/bench/hist.git" warm-g > /dev/null
T_NODE=() T_GIT=()
if [[ $ONLY_BASELINES != 1 ]]; then
  clone_time "$U/bench/hist" warm-n > /dev/null
  echo 5 > "/proc/$PID/clear_refs" 2>/dev/null || true   # resets VmHWM: the peak of the clones alone
fi
NODE_IDLE_KB=$(rss_kb "$PID")
for _ in $(seq "$RUNS"); do
  [[ $ONLY_BASELINES == 1 ]] || T_NODE+=("$(clone_time "$U/bench/hist" c-n)")
  T_GIT+=("$(clone_time "$G/bench/hist.git" c-g)")
done
NODE_HWM_KB=$(hwm_kb "$PID")
GIT_MEM=$(curl -sf -m 10 "$G/__rusage")
jget() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$GIT_MEM" "$1"; }
GIT_MAX_KB=$(jget children_maxrss_kb) GIT_SUM_KB=$(jget sampled_sum_peak_kb) HOST_KB=$(jget host_hwm_kb)
PACK_KB=$(du -sk c-g/.git/objects | cut -f1)
kill "$HOSTPID" 2>/dev/null; wait "$HOSTPID" 2>/dev/null || true; HOSTPID=

# ---- (b) git lfs pull vs curl -------------------------------------------------------------------
# fetch_all DIR PARALLEL: seconds to download every LFS file of bench/m with curl.
fetch_all() {
  local t0 t1 f pids=()
  rm -rf "$1" && mkdir -p "$1"
  sync   # earlier runs' dirty pages are written back before the clock starts
  t0=$(now)
  for f in "${LFS_FILES[@]}"; do
    if [[ $2 == 1 ]]; then
      curl -sf -m 600 -o "$1/$f" "$U/bench/m/resolve/main/$f" & pids+=($!)
    else
      curl -sf -m 600 -o "$1/$f" "$U/bench/m/resolve/main/$f"
    fi
  done
  for j in "${pids[@]}"; do wait "$j"; done
  t1=$(now)
  secs "$t0" "$t1"
}
# lfs_pull_time DIR: seconds of `git lfs pull` in a fresh pointers-only clone (the clone untimed),
# as its two halves: `git lfs fetch` (download into .git/lfs, verified) and `git lfs checkout`
# (the files into the work tree); prints "FETCH CHECKOUT".
lfs_pull_time() {
  local t0 t1 t2
  rm -rf "$1"
  GIT_LFS_SKIP_SMUDGE=1 timeout 600 git clone -q "$U/bench/m" "$1"
  sync
  t0=$(now)
  (cd "$1" && timeout 900 git lfs fetch > /dev/null)
  t1=$(now)
  (cd "$1" && timeout 900 git lfs checkout > /dev/null)
  t2=$(now)
  echo "$(secs "$t0" "$t1") $(secs "$t1" "$t2")"
}
same_files() {  # same_files DIR: every LFS file of DIR equals the generated one
  local f
  for f in "${LFS_FILES[@]}"; do cmp -s "model/$f" "$1/$f" || { echo "git_bench: $1/$f differs from the model" >&2; exit 1; }; done
}
fetch_all warm 1 > /dev/null   # fills the raw cache (made after a first download): every run
same_files warm                # below reads hot files
for _ in $(seq 300); do   # the raw copies are made in the background: wait for all of them
  (( $(du -sb data/rawcache 2>/dev/null | cut -f1 || echo 0) >= LFS_BYTES )) && break
  sleep 0.1
done
fetch_all warm 1 > /dev/null
rm -rf warm
echo 5 > "/proc/$PID/clear_refs" 2>/dev/null || true   # VmHWM from here: part (b) alone
P_PAR=() P_SEQ=() P_LFS=() P_FETCH=() P_CHECKOUT=()
for r in $(seq "$RUNS"); do
  P_PAR+=("$(fetch_all d-par 1)")
  P_SEQ+=("$(fetch_all d-seq 0)")
  if [[ $ONLY_BASELINES != 1 ]]; then
    read -r f c < <(lfs_pull_time d-lfs)
    P_FETCH+=("$f") P_CHECKOUT+=("$c") P_LFS+=("$(awk -v a="$f" -v b="$c" 'BEGIN { printf "%.3f", a + b }')")
  fi
  if [[ $r == 1 ]]; then
    same_files d-par; same_files d-seq
    [[ $ONLY_BASELINES == 1 ]] || same_files d-lfs
  fi
  rm -rf d-par d-seq d-lfs
done

# ---- the table ----------------------------------------------------------------------------------
MB_LFS=$(awk -v b="$LFS_BYTES" 'BEGIN { printf "%.0f", b / 1e6 }')
GB=$(median "${T_GIT[@]}")
PB=$(median "${P_PAR[@]}")
rate() { awk -v b="$LFS_BYTES" -v t="$1" 'BEGIN { printf "%.0f", b / t / 1e6 }'; }
echo "git $(git --version | cut -d' ' -f3), $(git lfs version | cut -d' ' -f1); $RUNS runs each, medians; $(nproc) cores"
echo
echo "| operation | median s | MB/s | × baseline | server peak memory |"
echo "|---|---:|---:|---:|---|"
echo "| (a) clone, $COMMITS commits (pointers only, $(mb "$PACK_KB") MB of objects): git http-backend — baseline | $GB | - | 1.00 | largest git process $(mb "$GIT_MAX_KB") MB; git processes at once $(mb "$GIT_SUM_KB") MB (+ CGI host $(mb "$HOST_KB") MB) |"
if [[ $ONLY_BASELINES == 1 ]]; then
  echo "| (a) clone, $COMMITS commits (pointers only): hubnode | - | - | - | - |"
else
  NT=$(median "${T_NODE[@]}")
  echo "| (a) clone, $COMMITS commits (pointers only): hubnode | $NT | - | $(ratio "$NT" "$GB") | VmHWM $(mb "$NODE_HWM_KB") MB (RSS before the clones $(mb "$NODE_IDLE_KB") MB) |"
fi
echo "| (b) download of the $MB_LFS MB of LFS files, curl, ${#LFS_FILES[@]} at once — baseline | $PB | $(rate "$PB") | 1.00 | |"
S=$(median "${P_SEQ[@]}")
echo "| (b) the same, curl, one file after another | $S | $(rate "$S") | $(ratio "$S" "$PB") | |"
if [[ $ONLY_BASELINES == 1 ]]; then
  echo "| (b) git lfs pull (fresh pointers-only clone) | - | - | - | |"
else
  L=$(median "${P_LFS[@]}") LF=$(median "${P_FETCH[@]}") LC=$(median "${P_CHECKOUT[@]}")
  echo "| (b) git lfs fetch (download into .git/lfs, each object verified by git-lfs) | $LF | $(rate "$LF") | $(ratio "$LF" "$PB") | |"
  echo "| (b) git lfs checkout (the files into the work tree; no network) | $LC | $(rate "$LC") | $(ratio "$LC" "$PB") | |"
  echo "| (b) git lfs pull = fetch + checkout (fresh pointers-only clone) | $L | $(rate "$L") | $(ratio "$L" "$PB") | VmHWM $(mb "$(hwm_kb "$PID")") MB over part (b) (curl runs included) |"
fi
echo
echo "runs (s): http-backend ${T_GIT[*]}; hubnode ${T_NODE[*]:-"-"}; curl at once ${P_PAR[*]}; curl one by one ${P_SEQ[*]}; git lfs fetch ${P_FETCH[*]:-"-"}; checkout ${P_CHECKOUT[*]:-"-"}"
