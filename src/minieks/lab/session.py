"""Running the commands a learner would type, showing each with its real output, and keeping a
record for the report.

Commands are shown as typed on an EKS operator host (`kubectl ...`, `aws ec2 ...`, `minieks ssh
NODE -- ...`) and run for real against the lab: kubectl with the cluster's kubeconfig, the aws CLI
with AWS_ENDPOINT_URL_EC2 pointing at the emulator, node commands in the node's namespace.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Entry:
    command: str
    output: str


@dataclass
class StepRecord:
    number: int
    title: str
    summary: str
    entries: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pictures: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Session:
    def __init__(self, cluster: str, endpoints: dict, out=sys.stdout, color: bool | None = None):
        self.cluster = cluster
        self.endpoints = endpoints
        self.out = out
        self.color = out.isatty() if color is None else color
        bindir = os.path.dirname(sys.executable)
        self.env = dict(os.environ, KUBECONFIG=endpoints["kubeconfig"], AWS_ENDPOINT_URL_EC2=endpoints["ec2_url"],
                        AWS_DEFAULT_REGION=endpoints.get("region", "ap-northeast-2"), AWS_ACCESS_KEY_ID="minieks",
                        AWS_SECRET_ACCESS_KEY="minieks", PATH=f"{bindir}:{os.environ.get('PATH', '')}")
        self.records: list[StepRecord] = []
        self.current: StepRecord | None = None
        self.picture_dir: Path | None = None

    # ------------------------------------------------------------------------------ output
    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def _bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.color else text

    def begin(self, number: int, title: str, summary: str) -> None:
        self.current = StepRecord(number, title, summary)
        self.records.append(self.current)
        self.say()
        self.say(self._bold(f"=== Step {number}: {title}"))
        self.say(summary)

    def end(self, seconds: float) -> None:
        if self.current:
            self.current.seconds = seconds
            self.say(f"--- step {self.current.number} took {seconds:.1f}s")

    def note(self, text: str) -> None:
        self.say(f"# {text}")
        if self.current:
            self.current.notes.append(text)

    def progress(self, text: str) -> None:
        """A line for long waits (not part of the record)."""
        self.say(f"  ... {text}")

    # ------------------------------------------------------------------------------ running
    def run(self, shown: str, argv: list[str] | None = None, input: str | None = None, check: bool = False,
            timeout: float = 120, quiet: bool = False) -> str:
        """Show `$ shown`, run it (argv, or `shown` split as a shell would), show and record its output."""
        argv = argv or shlex.split(shown)
        if not quiet:
            self.say(self._bold(f"$ {shown}"))
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env, input=input, timeout=timeout)
        output = ANSI.sub("", (done.stdout or "") + (done.stderr or ""))
        if not quiet:
            self.out.write(output if output.endswith("\n") or not output else output + "\n")
            self.out.flush()
            if self.current:
                self.current.entries.append(Entry(shown, output))
        if check and done.returncode != 0:
            raise RuntimeError(f"{shown} failed ({done.returncode}): {output.strip()[-500:]}")
        return done.stdout

    def kubectl(self, args: str, **kw) -> str:
        return self.run(f"kubectl {args}", ["kubectl", *shlex.split(args)], **kw)

    def ssh(self, node: str, command: str, **kw) -> str:
        from minieks.cluster.ssh import command_line, hostnamectl
        from minieks.fabric.command import find_node, registry
        info = find_node(registry(self.cluster), node)
        shown = f"minieks ssh {node} -- {command}"
        if command == "hostnamectl":
            text = hostnamectl(info, info.get("instance_type") or None)
            self.say(self._bold(f"$ {shown}"))
            self.out.write(text)
            if self.current:
                self.current.entries.append(Entry(shown, text))
            return text
        return self.run(shown, command_line(info, ["sh", "-c", command]), **kw)

    def capture(self, node: str, interface: str, filter_: str, action, settle: float = 0.5) -> str:
        """tcpdump on a node while `action()` runs (started, waited for, stopped with SIGINT)."""
        from minieks.fabric.command import find_node, registry
        info = find_node(registry(self.cluster), node)
        shown = f"minieks ssh {node} -- tcpdump -i {interface} -nn {filter_}"
        proc = subprocess.Popen(["ip", "netns", "exec", info["namespace"], "tcpdump", "-i", interface, "-nn", "-l",
                                 "--immediate-mode", *shlex.split(filter_)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        ready = threading.Event()

        def read_err() -> None:
            for line in proc.stderr:
                if "listening on" in line:
                    ready.set()
        threading.Thread(target=read_err, daemon=True).start()
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
        ready.wait(10)
        try:
            action()
            time.sleep(settle)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        time.sleep(0.1)
        text = "".join(lines)
        self.say(self._bold(f"$ {shown}        (in another terminal, stopped with Ctrl-C)"))
        self.out.write(text)
        if self.current:
            self.current.entries.append(Entry(shown, text))
        return text

    def picture(self, name: str) -> None:
        """A screenshot of the cluster board for the report (needs a report file and chromium)."""
        from minieks.web import browser
        if not (self.current and self.picture_dir and browser.CHROMIUM and self.endpoints.get("board_url")):
            return
        import tempfile
        png = self.picture_dir / f"{name}.png"
        with tempfile.TemporaryDirectory(prefix="mek-browser-") as profile:
            try:
                browser.screenshot(Path(profile), self.endpoints["board_url"], png)
            except Exception as err:  # noqa: BLE001 - a missing picture must not stop the lab
                self.progress(f"no board picture: {err}")
                return
        if png.exists():
            self.current.pictures.append(str(png))
            self.say(f"(board picture: {png})")
