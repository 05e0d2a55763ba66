#!/usr/bin/env bash
# Side-by-side L4 load-balancer benchmark in network namespaces on this machine.
# (Started from ../shared/bench/peers.sh; this copy adds steady-state defaults — keep-alive
# 30 s, connection-per-request 60 s — the client's TIME_WAIT count after each
# connection-per-request run, and the optional FIN-delay capture FIN_CAPTURE=SECONDS.)
#
#   client --[pub bridge]-- director(eth0 | eth1) --[priv bridge]-- rs1, rs2, rs3 (nginx)
#
# Modes (MODES="..."; default: the three peers):
#   route    kernel IP forwarding, client hits rs1 directly  (the ceiling: no load balancing)
#   nft      kernel nftables DNAT, numgen round robin          (kube-proxy style NAT, in kernel)
#   haproxy  HAProxy 'mode tcp', round robin                   (userspace full proxy)
#   cmd      a director you bring: DIRECTOR_CMD runs inside the director namespace and must
#            serve VIP:80 in NAT mode (real servers' gateway is NATVIP). The lab's addresses are
#            in its environment (see 'export' below); DIRECTOR_NAME labels its lines.
#   cmd2     a second one in the same run: DIRECTOR_CMD2, DIRECTOR_NAME2 (e.g. other options)
# TOPO=dr builds the direct-routing lab instead: one LAN (client, director, real servers at
# 10.1.0.11-13, each holding the VIP on lo with arp_ignore=1/arp_announce=2, set up by this
# script); there 'route' is kernel one-way forwarding (the client's /32 route to the VIP
# points at the director, which forwards to rs1) and 'cmd' is your director in DR mode.
# Every measurement gets a freshly built lab (no TIME_WAIT or conntrack state carried from
# one mode to the next), and modes alternate A B A B ... for REPS rounds so drift hits all.
# Loads: keep-alive requests/s for DUR_KA s, connection-per-request conn/s for DUR_CL s
# (long enough to reach steady state: a single client recycles its ports within ~30 s).
# Per mode it prints the median over the rounds, then min/max, wrk's p99 (and, last, p50) latency (ms, median
# over rounds), the socket errors summed over rounds, and the client's TIME_WAIT sockets at
# the end of each connection-per-request run (tw_med, tw_max). A client that closes before
# the server's FIN reached it keeps a TIME_WAIT socket for 60 s; once those hold its ~28k
# ephemeral ports, a single client makes at most ~470 conn/s, whatever the director.
# FIN_CAPTURE=S: after the measurements of a lab, S more seconds of connection-per-request
# load with tcpdump on the client's interface; bench/fin-delay.py prints, per mode, how
# long after the response's last data segment the server's FIN arrived (p50/p99, µs) and
# how many connections the client closed first (fin_* in the summary line).
# PIN=1 models a director on its own machine on these 2 shared cores: the client (wrk) and
# the real servers (nginx) run on CPU PIN_LOAD_CPU (0), HAProxy on PIN_DIR_CPU (1); a 'cmd'
# director is given that CPU itself (rvs: --cpu $PIN_DIR_CPU in DIRECTOR_CMD; the variable
# is exported). The kernel modes forward in softirq wherever the frames are processed.
# Ratios of one run are what count.
# A director counts as ready when the VIP answers (up to 15 s), not after a fixed sleep.
# Needs root, iproute2, nginx, wrk (+ nft, haproxy for those modes). Cleans up after itself.
set -euo pipefail
DUR_KA=${DUR_KA:-${DUR:-30}}; DUR_CL=${DUR_CL:-${DUR:-60}}; CONNS=${CONNS:-32}; REPS=${REPS:-3}
TOPO=${TOPO:-nat}
PIN=${PIN:-0}; export PIN_LOAD_CPU=${PIN_LOAD_CPU:-0} PIN_DIR_CPU=${PIN_DIR_CPU:-1}
ld() { [ "$PIN" = 1 ] && echo "taskset -c $PIN_LOAD_CPU" || true; }   # client, real servers
dc() { [ "$PIN" = 1 ] && echo "taskset -c $PIN_DIR_CPU" || true; }    # a userspace director
MODES=${MODES:-"route nft haproxy"}
export VIP=10.1.0.100 NATVIP=10.2.0.254 DIR_PUB=10.1.0.2 DIR_PRIV=10.2.0.1 CLIENT=10.1.0.10
export RS_IPS="10.2.0.11 10.2.0.12 10.2.0.13" PUB_IF=eth0 PRIV_IF=eth1
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
  P=${LAB_PREFIX:-lb$$}$1; TMP=$(mktemp -d)
  for n in $NS; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
  ip -n "$P-sw" link add brpub type bridge; ip -n "$P-sw" link add brpriv type bridge
  ip -n "$P-sw" link set brpub up; ip -n "$P-sw" link set brpriv up
  port cl eth0 brpub; port dir eth0 brpub
  [ "$TOPO" = dr ] || port dir eth1 brpriv
  local i=11 r
  for r in rs1 rs2 rs3; do
    if [ "$TOPO" = dr ]; then
      port $r eth0 brpub; ip -n "$P-$r" addr add 10.1.0.$i/24 dev eth0
      ip -n "$P-$r" addr add $VIP/32 dev lo
      x $r sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    else
      port $r eth0 brpriv
      ip -n "$P-$r" addr add 10.2.0.$i/24 dev eth0; ip -n "$P-$r" route add default via $NATVIP
    fi
    cat > "$TMP/$r.conf" <<NG
worker_processes 1; pid $TMP/$r.pid; error_log $TMP/$r.err;
events { worker_connections 8192; }
http { access_log off; server { listen 80 backlog=4096; location / { return 200 "$r\n"; } } }
NG
    x $r $(ld) nginx -c "$TMP/$r.conf"; i=$((i+1))
  done
  ip -n "$P-cl" addr add $CLIENT/24 dev eth0
  ip -n "$P-dir" addr add $DIR_PUB/24 dev eth0
  [ "$TOPO" = dr ] || ip -n "$P-dir" addr add $DIR_PRIV/24 dev eth1
  sleep 0.3
}
port() { ip link add "$2" netns "$P-$1" type veth peer name "$1$2" netns "$P-sw"
         ip -n "$P-sw" link set "$1$2" master "$3" up; ip -n "$P-$1" link set "$2" up; }
wrk1() { # dur extra-args... -> "rate p99ms errors p50ms"
  local d=$1; shift
  x cl $(ld) wrk -t1 -c"$CONNS" -d"${d}s" --latency "$@" | awk '
    function ms(v,  u) { u=v; sub(/[a-z]+$/,"",v); sub(/^[0-9.]+/,"",u);
                         return (u=="us")?v/1000:(u=="s")?v*1000:v }
    /Requests\/sec/ {r=$2}
    /^ +50%/ {q=ms($2)}
    /^ +99%/ {p=ms($2)}
    /Socket errors/ {gsub(/,/,""); e=$4+$6+$8+$10}
    /Non-2xx/ {e+=$NF}
    END {printf "%s %s %s %s\n", (r==""?0:r), (p==""?0:p), e+0, (q==""?0:q)}'
}
ready() { # url: wait until the VIP answers (15 s at most)
  local t
  for t in $(seq 75); do x cl curl -s -m 1 -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "peers.sh: $1 never answered" >&2; return 0
}
measure() { # label url
  local a b url=$2
  ready "$2"
  a=$(wrk1 "$DUR_KA" "$2"); b=$(wrk1 "$DUR_CL" -H 'Connection: close' "$2")
  set -- "$1" $a $b
  echo "$2" >> "$RES/$1.ka"; echo "$6" >> "$RES/$1.cl"
  echo "$3" >> "$RES/$1.kap99"; echo "$7" >> "$RES/$1.clp99"
  echo "$5" >> "$RES/$1.kap50"; echo "$9" >> "$RES/$1.clp50"
  echo $(( $4 + $8 )) >> "$RES/$1.err"
  x cl ss -Htan state time-wait | wc -l >> "$RES/$1.tw"
  [ "${FIN_CAPTURE:-0}" = 0 ] || capture "$1" "$url"
}
capture() { # label url: FIN delay and who closes first, from the client's interface
  local pcap=$TMP/fin.pcap tp
  ip netns exec "$P-cl" tcpdump -Z root -q -n -s 96 -B 65536 -i eth0 -w "$pcap" 'tcp port 80' \
    2>/dev/null & tp=$!
  sleep 1
  x cl $(ld) wrk -t1 -c"$CONNS" -d"${FIN_CAPTURE}s" -H 'Connection: close' "$2" >/dev/null
  sleep 0.5; kill -INT "$tp"; wait "$tp" 2>/dev/null || true
  tcpdump -r "$pcap" -tt -n -S 2>/dev/null | python3 "$(dirname "$0")/fin-delay.py" ${FIN_VERBOSE:+-v} >> "$RES/$1.fin"
  rm -f "$pcap"
}
one() { # mode
  case "$TOPO:$1" in dr:nft|dr:haproxy) echo "peers.sh: mode $1 needs TOPO=nat" >&2; exit 2;; esac
  up "$1"
  case $1 in
  route)
    x dir sysctl -qw net.ipv4.ip_forward=1
    if [ "$TOPO" = dr ]; then
      x dir sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
      ip -n "$P-dir" route add $VIP/32 via 10.1.0.11; ip -n "$P-cl" route add $VIP/32 via $DIR_PUB
      measure route http://$VIP/
    else
      ip -n "$P-dir" addr add $NATVIP/24 dev eth1
      ip -n "$P-cl" route add 10.2.0.0/24 via $DIR_PUB
      measure route http://10.2.0.11/
    fi ;;
  nft)
    x dir sysctl -qw net.ipv4.ip_forward=1; ip -n "$P-dir" addr add $NATVIP/24 dev eth1
    ip -n "$P-dir" addr add $VIP/24 dev eth0
    x dir nft -f - <<NFT
table ip lb {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr $VIP tcp dport 80 dnat to numgen inc mod 3 map { 0 : 10.2.0.11, 1 : 10.2.0.12, 2 : 10.2.0.13 }
  }
}
NFT
    measure nft http://$VIP/ ;;
  haproxy)
    ip -n "$P-dir" addr add $NATVIP/24 dev eth1; ip -n "$P-dir" addr add $VIP/24 dev eth0
    cat > "$TMP/haproxy.cfg" <<HA
global
  maxconn 8000
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend f
  bind $VIP:80
  default_backend b
backend b
  balance roundrobin
  server rs1 10.2.0.11:80
  server rs2 10.2.0.12:80
  server rs3 10.2.0.13:80
HA
    ip netns exec "$P-dir" $(dc) haproxy -f "$TMP/haproxy.cfg" & pids+=($!); sleep 0.5
    measure haproxy http://$VIP/ ;;
  cmd)
    : "${DIRECTOR_CMD:?set DIRECTOR_CMD to the director command line}"
    x dir sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0  # rvs refuses to start otherwise
    ip netns exec "$P-dir" sh -c "exec $DIRECTOR_CMD" & pids+=($!); sleep "${DIRECTOR_WARMUP:-0.5}"
    measure "${DIRECTOR_NAME:-cmd}" http://$VIP/ ;;
  cmd2)  # a second director (or the same with other options) in the same run
    : "${DIRECTOR_CMD2:?set DIRECTOR_CMD2 to the second director command line}"
    x dir sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
    ip netns exec "$P-dir" sh -c "exec $DIRECTOR_CMD2" & pids+=($!); sleep "${DIRECTOR_WARMUP:-0.5}"
    measure "${DIRECTOR_NAME2:-cmd2}" http://$VIP/ ;;
  *) echo "unknown mode $1" >&2; exit 2 ;;
  esac
  down
}
for _ in $(seq "$REPS"); do for m in $MODES; do one "$m"; done; done
med() { sort -g "$1" | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
mn() { sort -g "$1" | head -n 1; }
mx() { sort -g "$1" | tail -n 1; }
for m in $MODES; do
  l=$m; [ "$m" = cmd ] && l=${DIRECTOR_NAME:-cmd}; [ "$m" = cmd2 ] && l=${DIRECTOR_NAME2:-cmd2}
  printf '%-8s keepalive_rps=%-10s close_cps=%-10s rounds=%s ka_min=%s ka_max=%s cl_min=%s cl_max=%s ka_p99_ms=%s cl_p99_ms=%s errors=%s ka_p50_ms=%s cl_p50_ms=%s\n' \
    "$l" "$(med "$RES/$l.ka")" "$(med "$RES/$l.cl")" "$REPS" "$(mn "$RES/$l.ka")" "$(mx "$RES/$l.ka")" \
    "$(mn "$RES/$l.cl")" "$(mx "$RES/$l.cl")" "$(med "$RES/$l.kap99")" "$(med "$RES/$l.clp99")" \
    "$(awk '{s+=$1} END{print s+0}' "$RES/$l.err")" "$(med "$RES/$l.kap50")" "$(med "$RES/$l.clp50")"
  printf '%-8s tw_med=%s tw_max=%s\n' "$l" "$(med "$RES/$l.tw")" "$(mx "$RES/$l.tw")"
  if [ -s "$RES/$l.fin" ]; then sed "s/^/$l fin: /" "$RES/$l.fin"; fi
done
