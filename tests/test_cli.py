import json
import subprocess
import sys

import pytest

from minieks.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_instance_types_table_for_the_t3_family(capsys):
    code, out, _ = run(capsys, "instance-types", "t3.*")
    assert code == 0
    lines = out.splitlines()
    assert "DescribeInstanceTypes" in lines[1]
    assert lines[3].split("|")[1:4] == [" IPv4addr ", " MaxENI   ", "    Type      "]
    assert "|  6       |  3       |  t3.medium   |" in lines
    assert sum(1 for line in lines if "t3." in line) == 7


def test_instance_types_json_and_csv(capsys):
    code, out, _ = run(capsys, "instance-types", "t3.medium", "--format", "json")
    assert json.loads(out) == [{"Type": "t3.medium", "MaxENI": 3, "IPv4addr": 6}]
    code, out, _ = run(capsys, "instance-types", "t3.n*", "--format", "csv")
    assert out == "Type,MaxENI,IPv4addr\nt3.nano,2,2\n"


def test_max_pods_explain_for_the_seed(capsys):
    code, out, _ = run(capsys, "max-pods", "t3.medium", "--explain")
    assert code == 0
    assert "3 ENIs × (6 − 1) addresses + 2 host-network pods = 17" in out
    assert "15 left for workloads" in out


def test_max_pods_json(capsys):
    _, out, _ = run(capsys, "max-pods", "t3.medium", "--prefix-delegation", "--format", "json")
    [row] = json.loads(out)
    assert (row["maxPods"], row["formula"], row["ceiling"], row["mode"]) == (110, 242, 110, "prefix-delegation")


def test_all_in_eni_max_pods_layout(capsys):
    code, out, _ = run(capsys, "max-pods", "--all", "--format", "eni-max-pods")
    lines = out.splitlines()
    assert len(lines) == 1391
    assert lines == sorted(lines, key=lambda line: line.split()[0])
    assert "t3.medium 17" in lines and "m5.24xlarge 737" in lines and "p5.48xlarge 100" in lines


def test_all_with_prefix_delegation_skips_unsupported_types(capsys):
    code, out, err = run(capsys, "max-pods", "--all", "--prefix-delegation", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert all(r["mode"] == "prefix-delegation" for r in rows)
    assert "types skipped" in err and not any(r["instanceType"] == "c1.medium" for r in rows)


@pytest.mark.parametrize("argv,message", [
    (["max-pods", "t3.medum"], "unknown instance type 't3.medum'; did you mean t3.medium"),
    (["max-pods", "t3.medium", "--all"], "not both"),
    (["max-pods"], "at least one instance type"),
    (["max-pods", "--all", "--format", "eni-max-pods", "--explain"], "--explain cannot be used"),
    (["max-pods", "--all", "--format", "eni-max-pods", "--prefix-delegation"], "cannot be combined"),
    (["max-pods", "c1.medium", "--prefix-delegation"], "hypervisor is xen"),
    (["max-pods", "t3.medium", "--max-eni", "0"], "--max-eni must be at least 1"),
    (["instance-types", "t3.mediun"], "did you mean t3.medium"),
])
def test_bad_input_exits_2_with_a_clear_message(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert message in err


def test_console_script_is_installed():
    done = subprocess.run([sys.executable, "-m", "minieks.cli", "max-pods", "t3.medium"],
                          capture_output=True, text=True, check=True)
    assert "t3.medium" in done.stdout and "17" in done.stdout
