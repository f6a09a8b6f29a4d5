#!/usr/bin/python3
"""test_mpi_netns.py KILN SRCDIR: a node lost, left out, and the run finished.

Two "hosts" are two network namespaces made by the test (kiln_a<pid> at
10.77.0.1, kiln_b<pid> at 10.77.0.2, joined by a veth pair), so the ranks' traffic crosses a real
TCP link (OpenMPI's tcp transport only). mpirun runs in kiln_a and starts the
rank on 10.77.0.2 through an rsh agent that enters kiln_b. `kiln supervise`
runs the job with --before-restart scripts/mpi-prune-hosts.sh, whose probe
asks whether the link to a host still carries.

Mid-run the test takes host b away: its processes SIGKILLed, its end of the
link down. Then: the job ends with an error within seconds, the supervisor
records a crash, the hook writes a host file without 10.77.0.2, the job is
relaunched on the remaining host with --resume latest and finishes; its final
weights equal bit for bit those of an uninterrupted run with the same layout at
each step (2 ranks up to the checkpoint the relaunch resumed, 1 after it: one
rank sums the gradients in another order than two, see test_mpi.py).
Needs root (ip netns); skips (77) without it or without mpirun."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

KILN, SRC = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SRC, "tests", "parity"))
sys.path.insert(0, os.path.join(SRC, "tests", "train"))
import trainutil as tu  # noqa: E402
from kiln_torch import load_safetensors  # noqa: E402

DATA = os.path.join(SRC, "..", "shared", "data")
PRUNE = os.path.join(SRC, "scripts", "mpi-prune-hosts.sh")
TAG = os.getpid() % 100000  # names of this run's namespaces and links (a sanitizer run may go alongside)
NS = {"10.77.0.1": f"kiln_a{TAG}", "10.77.0.2": f"kiln_b{TAG}"}
NS_A, NS_B = NS.values()
VETH = {NS_A: f"kva{TAG}", NS_B: f"kvb{TAG}"}
failures = []


def check(cond, name, info=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {info}"), flush=True)
    if not cond:
        failures.append(name)


def sh(*cmd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if ok and p.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


if not shutil.which("mpirun") or not shutil.which("ip"):
    skip("mpirun or ip (iproute2) not found")
if "mpi: none" in subprocess.run([KILN, "env"], capture_output=True, text=True).stdout:
    skip("kiln was built without MPI")
if not os.path.isdir(DATA):
    skip(f"{DATA} not found")
if os.geteuid() != 0 or sh("ip", "netns", "add", f"kiln_p{TAG}", ok=False).returncode:
    skip("cannot create network namespaces here (needs root and CAP_SYS_ADMIN)")
sh("ip", "netns", "del", f"kiln_p{TAG}", ok=False)


def netns_down():
    for ns in NS.values():
        sh("ip", "netns", "del", ns, ok=False)


def netns_up():
    netns_down()
    for ns in NS.values():
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", VETH[NS_A], "type", "veth", "peer", "name", VETH[NS_B])
    for ip, ns in NS.items():
        dev = VETH[ns]
        sh("ip", "link", "set", dev, "netns", ns)
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")


W = tempfile.mkdtemp(prefix="kiln_netns_")
agent = os.path.join(W, "agent.sh")  # "agent.sh HOST CMD...": CMD inside HOST's namespace
open(agent, "w").write("#!/bin/sh\nhost=$1; shift\ncase \"$host\" in\n" +
                       "".join(f"  {ip}) ns={ns} ;;\n" for ip, ns in NS.items()) +
                       "  *) echo \"agent: unknown host $host\" >&2; exit 1 ;;\nesac\n"
                       "exec ip netns exec \"$ns\" sh -c \"$*\"\n")
probe = os.path.join(W, "probe.sh")  # alive: host a itself, or a link to b that still carries
open(probe, "w").write("#!/bin/sh\n[ \"$1\" = 10.77.0.1 ] && exit 0\n"
                       f"ip -n {NS_A} link show {VETH[NS_A]} | grep -q LOWER_UP\n")
os.chmod(agent, 0o755)
os.chmod(probe, 0o755)
hosts_all, hosts_live = os.path.join(W, "hosts.all"), os.path.join(W, "hosts.live")
open(hosts_all, "w").write("10.77.0.1 slots=1\n10.77.0.2 slots=1\n")
shutil.copy(hosts_all, hosts_live)

tu.byte_shards(KILN, SRC, W)  # Tiny Shakespeare as byte shards in W/data
STEPS = 150
cfg = os.path.join(W, "tiny.yaml")
open(cfg, "w").write(f"""model:
  vocab_size: 256
  block_size: 64
  n_layer: 2
  n_head: 4
  n_embd: 64
train:
  batch_size: 8
  grad_accum: 2
  steps: {STEPS}
  lr: 1.0e-3
  warmup_steps: 5
  checkpoint_every: 10
  eval_every: 0
  log_every: 10
  threads: 1
data:
  train: {W}/data/train_*.bin
""")
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
ENV["ASAN_OPTIONS"] = ENV.get("ASAN_OPTIONS", "").replace("detect_leaks=1", "detect_leaks=0")  # see test_mpi.py


def final_weights(run):
    return load_safetensors(os.path.join(run, f"ckpt-{STEPS:08d}", "model.safetensors"))[0]


t0 = time.monotonic()
ref = os.path.join(W, "ref")  # uninterrupted, 2 ranks on one host
subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "2", KILN, "pretrain", cfg, "-q", "--set",
                f"out_dir={ref}", "--set", "train.keep_last=0"], env=ENV, check=True, stdout=subprocess.DEVNULL)

run = os.path.join(W, "run")
try:
    try:
        netns_up()
    except RuntimeError as e:  # namespaces allowed, but no veth pairs (a container without the module)
        netns_down()
        skip(f"cannot join two network namespaces here: {e}")
    mpirun = ["ip", "netns", "exec", NS_A, "mpirun", "--hostfile", hosts_live, "--bind-to", "none",
              "--mca", "plm_rsh_agent", agent, "--mca", "oob_tcp_if_include", "10.77.0.0/24",
              "--mca", "btl_tcp_if_include", "10.77.0.0/24", "--mca", "btl", "self,tcp", "-x", "OMP_NUM_THREADS"]
    hook = f"KILN_PROBE={probe} {PRUNE} {hosts_all} {hosts_live}"
    sup = subprocess.Popen([KILN, "supervise", "--run", run, "--backoff", "0.1", "--heartbeat-timeout", "60",
                            "--before-restart", hook, "--", *mpirun, KILN, "pretrain", cfg, "-q", "--set",
                            f"out_dir={run}", "--set", "parallel.timeout_s=20"],
                           env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not os.path.isdir(os.path.join(run, "ckpt-00000030")):
        time.sleep(0.05)
    pids_b = sh("ip", "netns", "pids", NS_B, ok=False).stdout.split()
    check(len(pids_b) >= 1, "host b runs a rank of the job", str(pids_b))
    t_kill = time.monotonic()
    for pid in pids_b:  # host b goes away: its processes, then its link
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass
    sh("ip", "-n", NS_B, "link", "set", VETH[NS_B], "down")
    try:
        out, _ = sup.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        sup.kill()
        out, _ = sup.communicate()
    took = time.monotonic() - t_kill
finally:
    netns_down()

check(sup.returncode == 0, "the supervisor finished the run", f"exit {sup.returncode}: {out[-2000:]}")
incidents = [json.loads(line) for line in open(os.path.join(run, "incidents.jsonl"))] \
    if os.path.exists(os.path.join(run, "incidents.jsonl")) else []
kinds = [i.get("kind") for i in incidents]
check("crash" in kinds, "the lost host ended the job: a crash recorded", str(kinds))
live = open(hosts_live).read()
check("10.77.0.2" not in live and "10.77.0.1" in live, "the hook left host b out of the host file", live)
check(os.path.isdir(os.path.join(run, f"ckpt-{STEPS:08d}")), "the relaunched job reached the last step")
check(took < 200, "lost host to finished run in bounded time", f"{took:.0f} s")
resumes = [r["step"] for r in map(json.loads, open(os.path.join(run, "metrics.jsonl")))
           if r.get("event") == "resume"]
check(len(resumes) == 1, "one resume recorded", str(resumes))
if os.path.isdir(os.path.join(run, f"ckpt-{STEPS:08d}")) and len(resumes) == 1:
    # the same layouts at the same steps without the failure: 2 ranks up to the
    # checkpoint the relaunch resumed, then one
    ref1 = os.path.join(W, "ref1")
    subprocess.run([KILN, "pretrain", cfg, "-q", "--set", f"out_dir={ref1}", "--resume",
                    os.path.join(ref, f"ckpt-{resumes[0]:08d}")], env=ENV, check=True, stdout=subprocess.DEVNULL)
    a, b = final_weights(run), final_weights(ref1)
    check(a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in b),
          f"final weights equal, bit for bit, an uninterrupted run's (2 ranks to step {resumes[0]}, then 1)")
    c = final_weights(ref)
    d = max(float(np.max(np.abs(a[k] - c[k]))) for k in c)
    print(f"against 2 ranks all the way: max |diff| {d:.3g} (the sums' order changed at the relaunch)")
print(f"test_mpi_netns: {time.monotonic() - t0:.0f} s")
if failures:
    print(f"{len(failures)} failure(s): {failures}\n--- supervisor output ---\n{out[-3000:]}")
    sys.exit(1)
shutil.rmtree(W, ignore_errors=True)
