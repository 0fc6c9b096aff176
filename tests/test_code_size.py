"""Library functions stay short enough to read: none over MAX_LINES lines (definition to last
line, docstring included) in tf_drnn/, export/ and benchmarks/."""
import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
MAX_LINES = 60
FOLDERS = ("tf_drnn", "export", "benchmarks")


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


def test_no_library_function_is_longer_than_the_limit():
  too_long = {key: n for key, n in function_lengths(*FOLDERS).items() if n > MAX_LINES}
  assert not too_long, (f"functions over {MAX_LINES} lines (split them into named steps): "
                        + ", ".join(f"{path}:{name} ({n})" for (path, name), n in sorted(too_long.items())))


def test_the_count_sees_every_folder():
  """The limit guards real code: each folder holds functions, the export package among them."""
  lengths = function_lengths(*FOLDERS)
  for folder in FOLDERS:
    assert any(path.startswith(folder + "/") for path, _ in lengths), folder
  assert ("export/convert.py", "export_tflite") in lengths
