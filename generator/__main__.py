"""`python -m generator ...`: the same options as `python -m pipelines generate ...`."""

import argparse
import sys

from generator.cli import add_arguments, main_from_args

parser = argparse.ArgumentParser(prog="python -m generator", description="synthetic inbox generator")
add_arguments(parser)
sys.exit(main_from_args(parser.parse_args()))
