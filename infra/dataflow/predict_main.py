"""FLEX_TEMPLATE_PYTHON_PY_FILE of the predict template: runs ``landcover predict``."""

import sys

from launch import translate

from pipelines.predict.cli import build_parser, main

if __name__ == "__main__":
    sys.exit(main(translate(sys.argv[1:], build_parser())))
