"""The machine a benchmark ran on, as lscpu tells it: model name and flags.

Every benchmark prints these lines first, since the CPU changes between
sessions and a library may pick a slower kernel on one of them.
"""
import subprocess


def lscpu_lines():
    """'# cpu: MODEL (N CPUs)' and '# flags: ...' from lscpu."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ["# cpu: lscpu not available"]
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    model = info.get("Model name", "?").strip()
    cpus = info.get("CPU(s)", "?").strip()
    return [f"# cpu: {model} ({cpus} CPUs)", f"# flags: {info.get('Flags', '?').strip()}"]


def cpu_model():
    return lscpu_lines()[0][len("# cpu: "):]
