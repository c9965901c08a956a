"""sgadvisor: least-privilege AWS security-group egress rules from VPC Flow Logs evidence."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sgadvisor")
except PackageNotFoundError:  # running from a checkout without an install
    __version__ = "0.0.0+checkout"

__all__ = ["__version__"]
