"""EC2's error codes as exceptions: the one way every part of the emulator reports a failure.

The HTTP front end renders an Ec2Error as EC2's XML error document with `status`; the in-process
client raises it as botocore's ClientError, so callers handle both front ends the same way.
"""

from __future__ import annotations


class Ec2Error(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def missing(parameter: str) -> Ec2Error:
    return Ec2Error("MissingParameter", f"The request must contain the parameter {parameter}")


def invalid(message: str) -> Ec2Error:
    return Ec2Error("InvalidParameterValue", message)
