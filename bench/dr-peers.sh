#!/usr/bin/env bash
# Direct-routing variant of the peers lab. Started from ../shared/bench/peers.sh (the
# project's shared lab: same structure, fresh lab per measurement, modes alternating over
# rounds, medians), changed for DR: one L2 segment, real servers hold the VIP on lo and
# answer the client directly, so only the forward half of each exchange crosses the
# director.
#
#   client 10.1.0.10 --+
#   director 10.1.0.2 -+-- [pub bridge] (one segment)
#   rs1..rs3 10.1.0.11-13 (nginx; VIP 10.1.0.100 on lo via `rvs realserver dr`)
#
# Modes (MODES="..."; default "route cmd"):
#   route   kernel IP forwarding one way, like DR: the client routes 10.3.0.0/24 via the
#           director (ip_forward=1, redirects off), which forwards to rs1 (10.3.0.11 on
#           its lo); rs1 answers the client directly. The ceiling for a one-way director.
#   direct  no director at all: client → rs1 10.1.0.11 (for reference)
#   cmd     a director you bring: DIRECTOR_CMD runs inside the director namespace and must
#           serve VIP:80 in direct-routing mode on $PUB_IF (the real servers are on that
#           link); DIRECTOR_NAME labels its lines. The lab's addresses are in its
#           environment (see 'export' below). RVS (path of the rvs binary) does the real
#           servers' DR setup.
# Needs root, iproute2, nginx, wrk, rvs. Cleans up after itself.
set -euo pipefail
DUR=${DUR:-5}; CONNS=${CONNS:-32}; REPS=${REPS:-3}
MODES=${MODES:-"route cmd"}
: "${RVS:?set RVS to the rvs binary (rvs realserver dr sets up the real servers)}"
export VIP=10.1.0.100 DIR_PUB=10.1.0.2 CLIENT=10.1.0.10
export RS_IPS="10.1.0.11 10.1.0.12 10.1.0.13" PUB_IF=eth0
NS="cl dir rs1 rs2 rs3 sw"
RES=$(mktemp -d)
P=""; TMP=""; pids=()
down() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  pids=()
  if [ -n "$TMP" ]; then
    for r in rs1 rs2 rs3; do [ -f "$TMP/$r.pid" ] && kill "$(cat "$TMP/$r.pid")" 2>/dev/null || true; done
    sleep 0.2; rm -rf "$TMP"; TMP=""
  fi
  if [ -n "$P" ]; then for n in $NS; do ip netns del "$P-$n" 2>/dev/null || true; done; P=""; fi
}
trap 'down; rm -rf "$RES"' EXIT
x() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }
up() {
  P=${LAB_PREFIX:-dr$$}$1; TMP=$(mktemp -d)
  for n in $NS; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
  ip -n "$P-sw" link add brpub type bridge; ip -n "$P-sw" link set brpub up
  port cl eth0 brpub; port dir eth0 brpub
  local i=11 r
  for r in rs1 rs2 rs3; do
    port $r eth0 brpub
    ip -n "$P-$r" addr add 10.1.0.$i/24 dev eth0
    x $r "$RVS" realserver dr --vip $VIP >/dev/null 2>&1 || { echo "dr-peers: rvs realserver dr failed in $r" >&2; exit 1; }
    cat > "$TMP/$r.conf" <<NG
worker_processes 1; pid $TMP/$r.pid; error_log $TMP/$r.err;
events { worker_connections 8192; }
http { access_log off; server { listen 80 backlog=4096; location / { return 200 "$r\n"; } } }
NG
    x $r nginx -c "$TMP/$r.conf"; i=$((i+1))
  done
  ip -n "$P-cl" addr add $CLIENT/24 dev eth0
  ip -n "$P-dir" addr add $DIR_PUB/24 dev eth0
  sleep 0.3
}
port() { ip link add "$2" netns "$P-$1" type veth peer name "$1$2" netns "$P-sw"
         ip -n "$P-sw" link set "$1$2" master "$3" up; ip -n "$P-$1" link set "$2" up; }
measure() { # label url
  local ka cl
  ka=$(x cl wrk -t1 -c"$CONNS" -d"${DUR}s" "$2" | awk '/Requests\/sec/{print $2}')
  cl=$(x cl wrk -t1 -c"$CONNS" -d"${DUR}s" -H 'Connection: close' "$2" | awk '/Requests\/sec/{print $2}')
  echo "${ka:-0}" >> "$RES/$1.ka"; echo "${cl:-0}" >> "$RES/$1.cl"
}
one() { # mode
  up "$1"
  case $1 in
  route)
    ip -n "$P-rs1" addr add 10.3.0.11/32 dev lo
    x dir sysctl -qw net.ipv4.ip_forward=1
    for k in all default eth0; do x dir sysctl -qw net.ipv4.conf.$k.send_redirects=0; done
    x cl sysctl -qw net.ipv4.conf.all.accept_redirects=0
    ip -n "$P-dir" route add 10.3.0.11/32 via 10.1.0.11
    ip -n "$P-cl" route add 10.3.0.0/24 via $DIR_PUB
    measure route http://10.3.0.11/ ;;
  direct)
    measure direct http://10.1.0.11/ ;;
  cmd)
    : "${DIRECTOR_CMD:?set DIRECTOR_CMD to the director command line}"
    x dir sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0  # rvs refuses to start otherwise
    ip netns exec "$P-dir" sh -c "exec $DIRECTOR_CMD" & pids+=($!); sleep "${DIRECTOR_WARMUP:-2}"
    measure "${DIRECTOR_NAME:-cmd}" http://$VIP/ ;;
  *) echo "unknown mode $1" >&2; exit 2 ;;
  esac
  down
}
for _ in $(seq "$REPS"); do for m in $MODES; do one "$m"; done; done
med() { sort -g "$1" | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
for m in $MODES; do
  l=$m; [ "$m" = cmd ] && l=${DIRECTOR_NAME:-cmd}
  printf '%-8s keepalive_rps=%-10s close_cps=%-10s rounds=%s\n' "$l" "$(med "$RES/$l.ka")" "$(med "$RES/$l.cl")" "$REPS"
done
