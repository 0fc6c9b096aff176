"""Library functions stay short enough to read: none over MAX_LINES lines (definition to last
line, docstring included) in tf_drnn/ and export/."""
import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
MAX_LINES = 60
# Longer today, to be split into named steps; this list may only shrink (a function that gets
# shorter must leave it, see the second test).
KNOWN_LONG = {("tf_drnn/stems.py", "plan_outputs"), ("tf_drnn/train.py", "define_flags"),
              ("tf_drnn/train_options.py", "check_options"), ("export/convert.py", "float16_weights")}


def function_lengths(*folders):
  """{(file relative to the repository, function name): lines} of every function and method."""
  lengths = {}
  for folder in folders:
    for path in sorted((REPO / folder).rglob("*.py")):
      for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
          key = (path.relative_to(REPO).as_posix(), node.name)
          lengths[key] = max(lengths.get(key, 0), node.end_lineno - node.lineno + 1)
  return lengths


LENGTHS = function_lengths("tf_drnn", "export")


def test_no_library_function_is_longer_than_the_limit():
  too_long = {key: n for key, n in LENGTHS.items() if n > MAX_LINES and key not in KNOWN_LONG}
  assert not too_long, (f"functions over {MAX_LINES} lines (split them into named steps): "
                        + ", ".join(f"{path}:{name} ({n})" for (path, name), n in sorted(too_long.items())))


@pytest.mark.parametrize("key", sorted(KNOWN_LONG), ids=lambda key: f"{key[0]}:{key[1]}")
def test_the_known_long_functions_are_still_long(key):
  """A function split below the limit leaves KNOWN_LONG, so that the list only shrinks."""
  assert LENGTHS.get(key, 0) > MAX_LINES, f"{key[0]}:{key[1]} is short now: remove it from KNOWN_LONG"

