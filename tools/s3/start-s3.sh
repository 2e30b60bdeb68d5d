#!/usr/bin/env bash
# start-s3.sh - start a real S3-compatible object store on 127.0.0.1 for tests,
# from Debian bookworm packages.
#
# dfos's copy of shared/s3/start-s3.sh (which CI machines may lack), run by
# `deno task test` (tools/test_task.ts). Changed here: apt-get waits up to
# 300 s for dpkg's lock instead of failing at once; python3 (which the
# script itself runs) is in ceph's package list, not assumed; `down` and `up`
# (below) stop the engine and start it again on its port and data, for tests
# of a store that goes away mid-transfer.
#
#   eval "$(start-s3.sh)"            # start; prints `export S3_...=` lines on stdout
#   start-s3.sh stop [STATE_DIR]     # stop it (default: $S3_STATE_DIR), remove STATE_DIR
#   start-s3.sh status [STATE_DIR]   # exit 0 if every daemon is alive
#   start-s3.sh down [STATE_DIR]     # stop the daemons, keep STATE_DIR (data, config, port)
#   start-s3.sh up [STATE_DIR]       # start them again as they were started, on the same
#                                    # port and data; wait for the signed round trip
#                                    # (START_S3_TIMEOUT); nothing on stdout
#
# Engines (START_S3_ENGINE):
#   ceph  (default) Ceph 16.2 (pacific): 1 ceph-mon + 1 ceph-osd (BlueStore on a
#         sparse file) + radosgw (beast). Supports conditional PUT
#         (If-None-Match: *, If-Match), DeleteObjects without Content-MD5.
#   swift OpenStack Swift 2.30 with the s3api middleware (proxy + account +
#         container + object servers). Starts faster and is lighter, but
#         answers 501 to conditional PUTs, and DeleteObjects needs Content-MD5.
#
# Everything (configs, keys, data, logs, pid file) lives in one fresh directory
# made by mktemp -d (under $START_S3_TMPDIR, else $TMPDIR, else /tmp). Only
# loopback is used. Nothing under /etc is read or written by the daemons
# (ceph: -c points at the state dir; swift: a launcher repoints Swift's
# hard-coded /etc/swift/swift.conf at the state dir's copy).
#
# Optional inputs (named START_S3_* so that the S3_* lines this script prints
# never feed back into a second start in the same shell):
#   START_S3_ENGINE        ceph | swift                      (default ceph)
#   START_S3_PORT          port of the S3 endpoint           (default: a free one)
#   START_S3_ACCESS_KEY    ceph: [A-Za-z0-9_-]; swift: "account:user"
#                          (default dfos-test / dfos:admin)
#   START_S3_SECRET_KEY    [A-Za-z0-9]                       (default: random)
#   START_S3_REGION        region for SigV4                  (default us-east-1)
#   START_S3_TIMEOUT       seconds to wait for the endpoint  (default 120)
#   START_S3_CEPH_STORE    bluestore | memstore              (default bluestore)
#   START_S3_CEPH_SIZE_GB  size of the sparse store file     (default 10)
#   START_S3_TMPDIR        parent of the state dir
#   START_S3_NO_INSTALL=1  never call apt-get
#
# Clients: path-style addressing, SigV4, region as above. AWS SDK for JS v3
# (>= 3.729) must be given
#   requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED"
# since neither engine understands the aws-chunked/trailing-checksum uploads
# those SDKs send by default for streamed bodies.
set -euo pipefail

PY=/usr/bin/python3       # Debian's python (not a pyenv/venv one): Swift and the ceph CLI need it
ENGINE=${START_S3_ENGINE:-ceph}

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}'; }
exec {LOGFD}>&2   # messages go to the original stderr even from inside redirected waits
log() { printf 'start-s3: %s\n' "$*" >&"$LOGFD"; }
die() { log "error: $*"; exit 1; }
rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# ---------------------------------------------------------------- stop/status
# a pid counts as ours only while its command line names our state dir
ours() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' </proc/"$1"/cmdline | grep -qF -- "$2/"; }

stop_pids() {  # stop_pids DIR PID... : TERM, wait up to 20 s, then KILL
  local dir=$1 pid; shift
  local live=()
  for pid in "$@"; do
    if ours "$pid" "$dir"; then kill -TERM "$pid" 2>/dev/null && live+=("$pid"); fi
  done
  local deadline=$((SECONDS + 20))
  while ((${#live[@]})) && ((SECONDS < deadline)); do
    local still=()
    for pid in "${live[@]}"; do ours "$pid" "$dir" && still+=("$pid"); done
    live=("${still[@]+"${still[@]}"}")
    if ((${#live[@]})); then sleep 0.1; fi
  done
  for pid in "${live[@]+"${live[@]}"}"; do
    if ours "$pid" "$dir"; then log "pid $pid did not exit, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

do_stop() {
  local dir=${1:-${S3_STATE_DIR:-}}
  [[ -n "$dir" ]] || die "stop: no state dir (argument or S3_STATE_DIR)"
  [[ -d "$dir" ]] || { log "stop: $dir does not exist"; return 0; }
  [[ -f "$dir/.start-s3" ]] || die "stop: $dir is not a start-s3 state dir"
  # stop in reverse start order, one daemon at a time (an OSD whose monitor
  # is already gone waits 5 s for it on shutdown)
  local pid
  if [[ -f "$dir/pids" ]]; then
    for pid in $(awk '{print $1}' "$dir/pids" | tac); do stop_pids "$dir" "$pid"; done
  fi
  rm -rf -- "$dir"
  log "stopped, removed $dir"
}

all_alive() {  # all_alive DIR: quiet; 0 if every recorded daemon is alive
  local pid name
  while read -r pid name; do ours "$pid" "$1" || return 1; done <"$1/pids"
}

do_status() {
  local dir=${1:-${S3_STATE_DIR:-}} pid name ok=0
  [[ -n "$dir" && -f "$dir/pids" ]] || die "status: no state dir"
  while read -r pid name; do
    if ours "$pid" "$dir"; then log "$name pid $pid alive"; else log "$name pid $pid DEAD"; ok=1; fi
  done <"$dir/pids"
  return $ok
}

# ------------------------------------------------------------------- helpers
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ "${START_S3_NO_INSTALL:-}" == 1 ]] && die "missing packages: ${missing[*]} (START_S3_NO_INSTALL=1)"
  log "installing ${missing[*]} (apt-get, no recommends)"
  local t0=$EPOCHREALTIME
  export DEBIAN_FRONTEND=noninteractive
  # another apt-get may hold dpkg's lock (a parallel start, unattended upgrades): wait for it
  local apt=(apt-get -o DPkg::Lock::Timeout=300)
  if ! timeout 900 "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" >&2; then
    timeout 300 "${apt[@]}" update -q >&2 || true
    timeout 900 "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" >&2 || die "apt-get install failed"
  fi
  log "installed in $(elapsed "$t0") s"
}

free_ports() {  # free_ports N -> N distinct free loopback ports, one per line
  "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

start_daemon() {  # start_daemon NAME CMD... ; own session, output to log/NAME.out, pid recorded
  local name=$1; shift
  (
    # the daemon must hold none of our caller's descriptors (a pipe from
    # `eval "$(...)"`, a CI log pipe, our LOGFD): it would keep them open
    local fd
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null || true
    done
    exec setsid "$@" </dev/null >>"$STATE/log/$name.out" 2>&1
  ) &
  echo "$! $name" >>"$STATE/pids"
  # the command, for `up`: NAME then the words, shell-quoted
  if [[ -z "${RESTARTING:-}" ]]; then { printf '%s' "$name"; printf ' %q' "$@"; echo; } >>"$STATE/commands"; fi
}

wait_for() {  # wait_for SECONDS WHAT CMD... : poll CMD until it succeeds, daemons alive
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ! all_alive "$STATE"; then
      do_status "$STATE" || true; fail "a daemon died while waiting for $what"
    fi
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}

fail() {  # fail MSG: show logs, stop what we started, exit 1
  log "$1"
  local f
  for f in "$STATE"/log/*; do [[ -s "$f" ]] && { log "--- tail $f"; tail -n 25 "$f" >&"$LOGFD"; }; done
  do_stop "$STATE" || true
  die "$1"
}

http_answers() {  # http_answers PORT: any HTTP response to GET /
  "$PY" -c 'import http.client,sys; c=http.client.HTTPConnection("127.0.0.1",int(sys.argv[1]),timeout=5); c.request("GET","/"); c.getresponse().read()' "$1"
}

s3_probe() {  # signed S3 round trip: PUT bucket, PUT/GET/DELETE object, DELETE bucket
  "$PY" - "$S3_PORT" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$S3_REGION" <<'EOF'
import datetime, hashlib, hmac, http.client, sys, uuid
from urllib.parse import quote
port, ak, sk, region = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
host = "127.0.0.1:%d" % port
def req(method, path, body=b""):
    t = datetime.datetime.now(datetime.timezone.utc)
    amz, day = t.strftime("%Y%m%dT%H%M%SZ"), t.strftime("%Y%m%d")
    ph = hashlib.sha256(body).hexdigest()
    h = {"host": host, "x-amz-content-sha256": ph, "x-amz-date": amz}
    sh = ";".join(sorted(h))
    creq = "\n".join([method, quote(path), "", "".join("%s:%s\n" % (k, h[k]) for k in sorted(h)), sh, ph])
    scope = "%s/%s/s3/aws4_request" % (day, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + sk).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (ak, scope, sh, sig)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=h)
    r = c.getresponse(); data = r.read(); c.close()
    if r.status // 100 != 2:
        raise SystemExit("%s %s -> %d %s" % (method, path, r.status, data[:300]))
    return data
b = "/start-s3-probe-" + uuid.uuid4().hex[:12]
req("PUT", b)
req("PUT", b + "/probe", b"hello")
assert req("GET", b + "/probe") == b"hello"
req("DELETE", b + "/probe")
req("DELETE", b)
EOF
}

# ---------------------------------------------------------------------- ceph
ceph_start() {
  local store=${START_S3_CEPH_STORE:-bluestore} size_gb=${START_S3_CEPH_SIZE_GB:-10}
  [[ "$store" == bluestore || "$store" == memstore ]] || fail "START_S3_CEPH_STORE: bluestore or memstore"
  [[ "$size_gb" =~ ^[1-9][0-9]*$ ]] || fail "START_S3_CEPH_SIZE_GB: a whole number of GiB"
  local ports mon_port; mapfile -t ports < <(free_ports 2)
  mon_port=${ports[0]}; S3_PORT=${START_S3_PORT:-${ports[1]}}
  local fsid osd_uuid
  fsid=$("$PY" -c 'import uuid; print(uuid.uuid4())'); osd_uuid=$("$PY" -c 'import uuid; print(uuid.uuid4())')
  local d=$STATE
  mkdir -p "$d/mon.a" "$d/osd.0" "$d/run" "$d/log" "$d/rgw" "$d/crash"
  cat >"$d/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
ms bind ipv6 = false
run dir = $d/run
admin socket = $d/run/\$name.asok
log file = $d/log/\$name.log
pid file = $d/run/\$name.pid
crash dir = $d/crash
keyring = $d/keyring
mon data = $d/mon.\$id
osd data = $d/osd.\$id
# one OSD, one replica
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# commit monitor changes (pool creation at rgw start) in 50 ms, not 1 s
paxos propose interval = 0.05
osd objectstore = $store
bluestore block path = $d/osd.0/block.file
bluestore block create = true
bluestore block size = $((size_gb * 1024 * 1024 * 1024))
bluestore cache autotune = false
bluestore cache size = 268435456
osd memory target = 1073741824
memstore device bytes = $((size_gb * 1024 * 1024 * 1024))

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT tcp_nodelay=1
rgw data = $d/rgw
rgw thread pool size = 128
# reclaim the data of deleted/overwritten objects after 1 min (default 2 h)
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF
  local C=(ceph -c "$d/ceph.conf" --connect-timeout 15)
  ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$d/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$d/keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
  ceph-authtool "$d/keyring" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$d/monmap" >/dev/null
  ceph-mon -c "$d/ceph.conf" --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring" >>"$d/log/mkfs.out" 2>&1 \
    || fail "ceph-mon --mkfs failed"
  start_daemon mon ceph-mon -c "$d/ceph.conf" -i a -f
  wait_for 30 "ceph-mon" timeout 20 "${C[@]}" mon stat
  local id; id=$(timeout 30 "${C[@]}" osd new "$osd_uuid" 0) || fail "ceph osd new failed"
  timeout 120 ceph-osd -c "$d/ceph.conf" -i "$id" --mkfs --osd-uuid "$osd_uuid" >>"$d/log/mkfs.out" 2>&1 \
    || fail "ceph-osd --mkfs failed"
  start_daemon osd ceph-osd -c "$d/ceph.conf" -i "$id" -f
  osd_up() { timeout 20 "${C[@]}" osd stat | grep -q ' 1 up'; }
  wait_for 60 "ceph-osd up" osd_up
  start_daemon rgw radosgw -c "$d/ceph.conf" -n client.rgw.a -f
  # create the user only once radosgw has set up its zone and pools (both
  # would otherwise race to create the default zone)
  wait_for 90 "radosgw HTTP" http_answers "$S3_PORT"
  local deadline=$((SECONDS + 60))
  until timeout 30 radosgw-admin -c "$d/ceph.conf" user create --uid=dfos --display-name=dfos \
        --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >"$d/log/user.out" 2>&1; do
    ((SECONDS < deadline)) || fail "radosgw-admin user create failed"
    sleep 0.2
  done
}

# --------------------------------------------------------------------- swift
swift_start() {
  local ports; mapfile -t ports < <(free_ports 4)
  S3_PORT=${START_S3_PORT:-${ports[0]}}
  local account_port=${ports[1]} container_port=${ports[2]} object_port=${ports[3]}
  local d=$STATE
  mkdir -p "$d/etc" "$d/srv/d1" "$d/log"
  # xattrs are required by the object server
  "$PY" -c 'import sys,xattr; open(sys.argv[1],"w").close(); xattr.setxattr(sys.argv[1],"user.t",b"1")' "$d/.xattr-test" \
    || fail "filesystem of $d lacks user xattrs (set START_S3_TMPDIR to an ext4/xfs dir)"
  rm -f "$d/.xattr-test"
  cat >"$d/etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = $(rand_hex 16)
swift_hash_path_prefix = start-s3
[storage-policy:0]
name = Policy-0
default = yes
[swift-constraints]
EOF
  # launcher: Swift reads /etc/swift/swift.conf from a module constant;
  # repoint it before anything imports storage_policy/constraints, and send
  # logs to stderr only (there is no /dev/log; Swift would fall back to
  # UDP syslog on localhost:514).
  cat >"$d/swift-run.py" <<'EOF'
import logging, sys
swift_conf, server, conf_file = sys.argv[1:4]
import swift.common.utils as utils
utils.SWIFT_CONF_FILE = swift_conf
class _NoSyslog(logging.NullHandler):
    def __init__(self, *a, **kw):
        logging.NullHandler.__init__(self)
utils.ThreadSafeSysLogHandler = _NoSyslog
from swift.common.wsgi import run_wsgi
sys.exit(run_wsgi(conf_file, server, verbose=True))
EOF
  local common="bind_ip = 127.0.0.1
user = $(id -un)
swift_dir = $d/etc
devices = $d/srv
mount_check = false
disable_fallocate = true
log_level = WARNING
workers = 0"
  local s port
  for s in account container object; do
    case $s in account) port=$account_port ;; container) port=$container_port ;; object) port=$object_port ;; esac
    cat >"$d/etc/$s-server.conf" <<EOF
[DEFAULT]
bind_port = $port
$common
[pipeline:main]
pipeline = $s-server
[app:$s-server]
use = egg:swift#$s
[$s-replicator]
[$s-auditor]
EOF
  done
  cat >"$d/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $S3_PORT
user = $(id -un)
swift_dir = $d/etc
log_level = WARNING
workers = 0

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
node_timeout = 30
conn_timeout = 2

[filter:s3api]
use = egg:swift#s3api
location = $S3_REGION
s3_acl = false
allow_multipart_uploads = true

[filter:tempauth]
use = egg:swift#tempauth
reseller_prefix = AUTH
user_${S3_ACCESS_KEY%%:*}_${S3_ACCESS_KEY#*:} = $S3_SECRET_KEY .admin

# No memcached is run: tempauth insists on a cache client being present, but
# S3 (signature) auth never needs a cached token, and without a cache every
# request reads account/container info from the backends (always coherent).
# Port 0 can never be listened on, so connects fail at once (ECONNREFUSED).
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:0
set log_level = CRITICAL

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:symlink]
use = egg:swift#symlink
EOF
  # rings: one device, one replica, for account/container/object
  "$PY" - "$d" "$account_port" "$container_port" "$object_port" <<'EOF' || fail "ring build failed"
import sys
d, ports = sys.argv[1], dict(zip(("account", "container", "object"), map(int, sys.argv[2:5])))
import swift.common.utils as utils
utils.SWIFT_CONF_FILE = d + "/etc/swift.conf"
from swift.common.ring import RingBuilder
for name, port in ports.items():
    b = RingBuilder(6, 1, 1)        # part power 6, 1 replica, min_part_hours 1
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "d1", "weight": 100, "meta": ""})
    b.rebalance()
    b.get_ring().save("%s/etc/%s.ring.gz" % (d, name))
EOF
  for s in account container object proxy; do
    start_daemon "$s" "$PY" "$d/swift-run.py" "$d/etc/swift.conf" "$s-server" "$d/etc/$s-server.conf"
  done
}

# ----------------------------------------------------------------- down/up
do_down() {  # stop every daemon, keep the state dir
  local dir=${1:-${S3_STATE_DIR:-}} pid
  [[ -n "$dir" && -f "$dir/.start-s3" && -f "$dir/commands" ]] || die "down: no state dir of an engine this script started (argument or S3_STATE_DIR)"
  for pid in $(awk '{print $1}' "$dir/pids" | tac); do stop_pids "$dir" "$pid"; done
  log "down: daemons stopped, $dir kept"
}

do_up() {  # start the daemons of a downed state dir again, as they were started
  local dir=${1:-${S3_STATE_DIR:-}} pid name words
  [[ -n "$dir" && -f "$dir/.start-s3" && -f "$dir/commands" && -f "$dir/exports" ]] || die "up: no state dir of an engine this script started (argument or S3_STATE_DIR)"
  STATE=$dir RESTARTING=1
  while read -r pid name; do
    if ours "$pid" "$dir"; then die "up: $name pid $pid is still running (down first)"; fi
  done <"$dir/pids"
  # shellcheck source=/dev/null
  source "$dir/exports"
  S3_PORT=${S3_ENDPOINT##*:}
  local t0=$EPOCHREALTIME timeout=${START_S3_TIMEOUT:-120}
  : >"$dir/pids"
  while read -r name words; do
    eval "local command=($words)"
    start_daemon "$name" "${command[@]}"
  done <"$dir/commands"
  local deadline=$((SECONDS + timeout)) err="" f
  until err=$(s3_probe 2>&1); do
    if ! all_alive "$dir" || ((SECONDS >= deadline)); then
      do_status "$dir" || true
      for f in "$dir"/log/*.out; do [[ -s "$f" ]] && { log "--- tail $f"; tail -n 25 "$f" >&"$LOGFD"; }; done
      do_down "$dir"
      die "up: the endpoint did not come back; last probe error: $err"
    fi
    sleep 0.1
  done
  log "up: $S3_ENGINE ready again on $S3_ENDPOINT after $(elapsed "$t0") s"
}

# --------------------------------------------------------------------- start
do_start() {
  local pkgs
  case $ENGINE in
    ceph) pkgs=(ceph-mon ceph-osd radosgw python3)
          S3_ACCESS_KEY=${START_S3_ACCESS_KEY:-dfos-test}
          [[ "$S3_ACCESS_KEY" =~ ^[A-Za-z0-9_-]+$ ]] || die "START_S3_ACCESS_KEY: use [A-Za-z0-9_-]" ;;
    swift) pkgs=(swift swift-proxy swift-object swift-container swift-account)
          S3_ACCESS_KEY=${START_S3_ACCESS_KEY:-dfos:admin}
          [[ "$S3_ACCESS_KEY" =~ ^[A-Za-z0-9]+:[A-Za-z0-9]+$ ]] || die "START_S3_ACCESS_KEY must be account:user (alphanumeric) for swift" ;;
    *) die "START_S3_ENGINE must be ceph or swift" ;;
  esac
  if [[ -n "${START_S3_PORT:-}" ]]; then
    "$PY" -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1])))' "$START_S3_PORT" 2>/dev/null \
      || die "START_S3_PORT=$START_S3_PORT is not free on 127.0.0.1"
  fi
  ensure_packages "${pkgs[@]}"
  [[ -x "$PY" ]] || die "$PY missing"
  S3_REGION=${START_S3_REGION:-us-east-1}
  S3_SECRET_KEY=${START_S3_SECRET_KEY:-$(rand_hex 20)}
  [[ "$S3_SECRET_KEY" =~ ^[A-Za-z0-9]+$ ]] || die "START_S3_SECRET_KEY: use [A-Za-z0-9]"
  local timeout=${START_S3_TIMEOUT:-120} t0=$EPOCHREALTIME
  STATE=$(mktemp -d "${START_S3_TMPDIR:-${TMPDIR:-/tmp}}/start-s3.XXXXXXXX")
  touch "$STATE/.start-s3"
  mkdir -p "$STATE/log"
  : >"$STATE/pids"
  # a failure or signal before we print the exports must not leave daemons behind
  trap 'fail "interrupted"' INT TERM
  trap 'if [[ -z "${STARTED:-}" && -d "$STATE" ]]; then log "start failed"; do_stop "$STATE" || true; fi' EXIT

  "${ENGINE}_start"

  local deadline=$((SECONDS + timeout)) err=""
  until err=$(s3_probe 2>&1); do
    if ! all_alive "$STATE"; then do_status "$STATE" || true; fail "a daemon died during start-up"; fi
    ((SECONDS < deadline)) || fail "endpoint not ready after ${timeout}s; last probe error: $err"
    sleep 0.1
  done
  STARTED=1
  trap - INT TERM EXIT
  log "$ENGINE ready on http://127.0.0.1:$S3_PORT after $(elapsed "$t0") s (state $STATE)"
  (umask 077; exports >"$STATE/exports")
  exports
}

exports() {  # the export lines of a started engine
  cat <<EOF
export S3_ENGINE=$ENGINE
export S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export S3_ACCESS_KEY='$S3_ACCESS_KEY'
export S3_SECRET_KEY='$S3_SECRET_KEY'
export S3_REGION=$S3_REGION
export S3_FORCE_PATH_STYLE=1
export S3_STATE_DIR='$STATE'
export S3_PID_FILE='$STATE/pids'
EOF
}

case "${1:-start}" in
  start) do_start ;;
  stop) do_stop "${2:-}" ;;
  status) do_status "${2:-}" ;;
  down) do_down "${2:-}" ;;
  up) do_up "${2:-}" ;;
  *) echo "usage: $0 [start|stop [STATE_DIR]|status [STATE_DIR]|down [STATE_DIR]|up [STATE_DIR]]" >&2; exit 2 ;;
esac
