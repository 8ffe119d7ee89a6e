"""FLEX_TEMPLATE_PYTHON_PY_FILE of the preprocess template: runs ``landcover preprocess``."""

import sys

from launch import translate

from pipelines.preprocess.cli import build_parser, main

if __name__ == "__main__":
    sys.exit(main(translate(sys.argv[1:], build_parser())))
