import argparse
import io

import pytest

from minieks.textout import aws_table, columns

awscli_formatter = pytest.importorskip("awscli.formatter")


def aws_cli_render(title, records):
    """What the real AWS CLI prints for these records with --output table (no tty, no colour)."""
    stream = io.StringIO()
    formatter = awscli_formatter.TableFormatter(argparse.Namespace(query=None, color="off"))
    formatter(title, records, stream)
    return stream.getvalue()


@pytest.mark.parametrize("records", [
    [{"Type": "t3.medium", "MaxENI": 3, "IPv4addr": 6}, {"Type": "t3.2xlarge", "MaxENI": 4, "IPv4addr": 15}],
    [{"A": "x", "B": "y"}],
    [{"LongHeaderName": 1, "B": "a-rather-long-cell-value-here"}, {"LongHeaderName": 22, "B": "z"}],
])
def test_aws_table_matches_the_real_aws_cli(records):
    assert aws_table("DescribeInstanceTypes", records) == aws_cli_render("DescribeInstanceTypes", records)


def test_title_wider_than_the_columns_matches_too():
    records = [{"A": 1}]
    assert aws_table("DescribeNetworkInterfaces", records) == aws_cli_render("DescribeNetworkInterfaces", records)


def test_columns_are_aligned_under_headers():
    out = columns(["NAME", "IP"], [["a", "10.0.0.1"], ["longer-name", "x"]])
    lines = out.splitlines()
    assert lines[0] == "NAME          IP"
    assert lines[1] == "a             10.0.0.1"
