"""The example as keras.io publishes it: converted to a notebook and executed in a
Jupyter kernel, run as a plain command with no flags, and its keras.io header and
formatting.

Both runs read a small fake `horses_or_humans` (8 train and 4 test images) that
tensorflow-datasets' own builder downloads from a local HTTP server and prepares
(tests/fake_dataset.py, the `prepared_data_dir` fixture of conftest.py), found
through `TFDS_DATA_DIR` as a reader's real data is found in ~/tensorflow_datasets:
no flag points at it. Everything runs offline.
"""

import ast
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "gradient_centralization.py")
# What the example prints when it compares the two optimizers.
COMPARISON = (
    "Not using Gradient Centralization",
    "Using Gradient Centralization",
    "Test accuracy",
)
# keras.io's converter refuses an example of more lines of code than its limit (350
# in 2024); its contributor guide asks for fewer than 300, and so do we.
MAX_LINES_OF_CODE = 300
# One training cell of 10 epochs x 2 optimizers on 8 images takes about a minute
# on 2 cores; the limit leaves room for a slow CI machine.
CELL_TIMEOUT = 900
# The heading of a last section the test adds to the notebook.
KERNEL_CHECK = "Which python the kernel ran"


# --- The keras.io conversion (after keras-io's scripts/tutobooks.py, py_to_nb) ---


def next_element(text):
    """Splits the next element off a tutobook script.

    A block that starts with a line beginning with `\"\"\"` is markdown and ends at the
    next line beginning with `\"\"\"` (which is dropped); anything else is code and ends
    before such a line. Returns (content, cell type, rest of the script, tag).
    """
    lines = text.split("\n")
    tag = None
    if lines[0].startswith('"""'):
        cell_type = "markdown"
        tag = lines[0][3:] or None
        if tag not in (None, "shell", "invisible"):
            raise ValueError(f"unknown cell tag {tag!r}")
        lines = lines[1:]
    else:
        cell_type = "code"
    end = next(
        (i for i, line in enumerate(lines) if line.startswith('"""')), len(lines)
    )
    rest = lines[end + 1 :] if cell_type == "markdown" else lines[end:]
    return "\n".join(lines[:end]), cell_type, "\n".join(rest), tag


def parse_header(header):
    fields = dict(line.split(": ", 1) for line in header.strip().split("\n"))
    author_field = "Authors" if "Authors" in fields else "Author"
    return fields, author_field


def count_lines_of_code(lines):
    """keras.io's count of the lines of code in a code cell (tutobooks' rule).

    Lines are taken without their indentation. Blank lines and lines starting with
    `#` do not count. A line starting with three double quotes does not count and,
    unless it also ends with three double quotes (a line of just three does), opens
    a string block: its lines do not count, up to and including the next line that
    starts with three double quotes.
    """
    count, in_string = 0, False
    for line in (line.strip() for line in lines):
        if not line or line.startswith("#"):
            continue
        if in_string:
            in_string = not line.startswith('"""')
        elif line.startswith('"""'):
            in_string = not line.endswith('"""')
        else:
            count += 1
    return count


def script_to_notebook(text, max_lines_of_code=MAX_LINES_OF_CODE):
    """The notebook keras.io makes of a tutobook script; like keras.io's converter,
    it refuses a script with too many lines of code."""
    header, _, text, _ = next_element(text)
    fields, author_field = parse_header(header)
    cells = [
        nbformat.v4.new_markdown_cell(
            f"# {fields['Title']}\n\n"
            f"**{author_field}:** {fields[author_field]}<br>\n"
            f"**Date created:** {fields['Date created']}<br>\n"
            f"**Last modified:** {fields['Last modified']}<br>\n"
            f"**Description:** {fields['Description']}"
        )
    ]
    lines_of_code = 0
    while text:
        content, cell_type, text, tag = next_element(text)
        lines = content.split("\n")
        if all(line == "" for line in lines):
            continue
        if not lines[0]:
            lines = lines[1:]
        source = "\n".join(lines)
        if tag == "invisible" or not source:
            continue
        if tag == "shell":
            source = "\n".join("!" + line for line in lines)
            cell_type = "code"
        if cell_type == "code":
            lines_of_code += count_lines_of_code(source.split("\n"))
            cells.append(nbformat.v4.new_code_cell(source))
        else:
            cells.append(nbformat.v4.new_markdown_cell(source))
    if lines_of_code >= max_lines_of_code:
        raise ValueError(
            f"Found {lines_of_code} lines of code, "
            f"but expected fewer than {max_lines_of_code}"
        )
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    return notebook


def read_script():
    with open(SCRIPT) as file:
        return file.read()


def test_converter_splits_like_tutobooks():
    script = (
        '"""\nTitle: T\nAuthor: A\nDate created: 1\nLast modified: 2\n'
        'Description: D.\nAccelerator: GPU\n"""\n\n"""\n## Setup\n"""\n\n'
        'import os\n\n\ndef f():\n    """Docstring."""\n    return 1\n\n\n'
        '"""shell\necho hi\n"""\n\n"""invisible\nhidden\n"""\n\nprint(f())\n'
    )
    notebook = script_to_notebook(script)
    cells = [(cell.cell_type, cell.source) for cell in notebook.cells]
    assert cells == [
        (
            "markdown",
            "# T\n\n**Author:** A<br>\n**Date created:** 1<br>\n"
            "**Last modified:** 2<br>\n**Description:** D.",
        ),
        ("markdown", "## Setup"),
        ("code", 'import os\n\n\ndef f():\n    """Docstring."""\n    return 1\n\n'),
        ("code", "!echo hi"),
        ("code", "print(f())\n"),
    ]


# --- The notebook, executed ---


def kernel_manager(tmp_path):
    """A kernel manager whose only kernel runs this venv's python with ipykernel."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(
        kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False
    )
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def outputs_of(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            yield from cell.outputs


@pytest.fixture(scope="module")
def executed_notebook(reader_env, tmp_path_factory):
    """The keras.io notebook of the example, executed top to bottom (nbconvert
    --execute's way: one kernel, cells in order, stop at the first error)."""
    from nbclient import NotebookClient

    folder = tmp_path_factory.mktemp("notebook")
    notebook = script_to_notebook(read_script())
    # A last cell of our own: which python the kernel ran.
    notebook.cells.append(nbformat.v4.new_markdown_cell(f"## {KERNEL_CHECK}"))
    notebook.cells.append(
        nbformat.v4.new_code_cell("import sys\nprint('KERNEL PYTHON', sys.executable)")
    )
    client = NotebookClient(
        notebook,
        km=kernel_manager(folder),
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(folder)}},
    )
    # Raises CellExecutionError (naming the cell and the error) if any cell fails;
    # cleanup_kc: shut the kernel down either way (nbclient keeps a kernel it did
    # not create alive otherwise).
    client.execute(env=reader_env, cwd=str(folder), cleanup_kc=True)
    return notebook


def test_notebook_runs_in_this_venv(executed_notebook):
    stdout = "".join(
        output.get("text", "")
        for output in outputs_of(executed_notebook)
        if output.output_type == "stream" and output.name == "stdout"
    )
    assert f"KERNEL PYTHON {sys.executable}\n" in stdout


def test_notebook_prints_the_comparison(executed_notebook):
    outputs = list(outputs_of(executed_notebook))
    errors = [output for output in outputs if output.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    text = "".join(
        output.get("text", "") + json.dumps(output.get("data", {}))
        for output in outputs
    )
    assert "SystemExit" not in text
    assert "Traceback" not in text
    stdout = "".join(
        output.get("text", "")
        for output in outputs
        if output.output_type == "stream" and output.name == "stdout"
    )
    for line in COMPARISON:
        assert line in stdout
    # The data is the fake dataset that tfds found through TFDS_DATA_DIR.
    assert "Training images: 8, test images: 4\n" in stdout


def test_notebook_shows_the_curves_inline(executed_notebook):
    images = [
        output
        for output in outputs_of(executed_notebook)
        if output.output_type in ("display_data", "execute_result")
        and "image/png" in output.get("data", {})
    ]
    assert images, "no inline image/png output: the training curves are not shown"


def outputs_by_section(notebook):
    """{section heading: (its text output, whether it shows an image)}, in order."""
    sections, heading = {}, None
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            heading = cell.source.split("\n")[0][3:]
            sections[heading] = ["", False]
        elif cell.cell_type == "code" and heading:
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stdout":
                    sections[heading][0] += output.text
                # Keras' model.summary() is displayed as rich text, not printed.
                data = output.get("data", {})
                sections[heading][0] += re.sub(
                    "\x1b\\[[0-9;]*m", "", data.get("text/plain", "")
                )
                sections[heading][1] |= "image/png" in data
    return sections


def test_each_section_shows_its_own_output(executed_notebook):
    """Run as keras.io's notebook, each section does what its prose says, and its
    output shows right under it."""
    sections = outputs_by_section(executed_notebook)
    del sections[KERNEL_CHECK]
    assert list(sections) == [
        "Introduction",
        "Setup",
        "Prepare the data",
        "Define a model",
        "Implement Gradient Centralization",
        "Train the model without GC",
        "Train the model with GC",
        "Comparing performance",
        "More pairs: an interval and a verdict",
        "Conclusion",
    ]
    expected = {
        "Introduction": [],
        "Setup": [],
        "Prepare the data": [
            "Image shape: (300, 300, 3)",
            "Training images: 8, test images: 4\n",
        ],
        "Define a model": ["Total params: 1,704,097"],
        "Implement Gradient Centralization": ["Column means after:  [0. 0. 0.]"],
        "Train the model without GC": ["Pair 1/1, seed 1337", "Epoch 10/10"],
        "Train the model with GC": ["Epoch 1/10", "Epoch 10/10"],
        "Comparing performance": [*COMPARISON, "Training time, warm epochs (s)"],
        "More pairs: an interval and a verdict": ["A single run supports no claim"],
        "Conclusion": [],
    }
    for heading, (stdout, _) in sections.items():
        for text in expected[heading]:
            assert text in stdout, (heading, text)
        if not expected[heading]:
            assert stdout == "", heading
    assert sections["Train the model without GC"][0].count("Epoch 10/10") == 1
    assert sections["Train the model with GC"][0].count("Epoch 10/10") == 1
    images = [heading for heading, (_, image) in sections.items() if image]
    assert images == ["Comparing performance"]


# --- The plain command, with no flags ---


def test_script_runs_with_no_flags(reader_env, tmp_path):
    """`python gradient_centralization.py`: default epochs (10), batch size (128)
    and learning rate (1e-4), on the dataset that tfds finds by default."""
    result = subprocess.run(
        [sys.executable, SCRIPT],
        cwd=tmp_path,
        env=reader_env,
        capture_output=True,
        text=True,
        timeout=CELL_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Traceback" not in result.stderr
    # No warning of the example's making (fit's `shuffle=True` on a tf.data one).
    assert "Warning" not in result.stdout + result.stderr
    for line in COMPARISON:
        assert line in result.stdout
    assert "Total params: 1,704,097" in result.stdout
    assert "Training images: 8, test images: 4\n" in result.stdout
    # The defaults: 10 epochs, and 8 training images in a single batch of 128.
    assert re.search(r"Epoch 10/10\b", result.stdout)
    assert "Epoch 11/" not in result.stdout


# --- keras.io's checks of the script ---


def test_title_cell():
    notebook = script_to_notebook(read_script())
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith(
        "# Gradient Centralization for Better Training Performance\n"
    )
    for field in ("Author", "Date created", "Last modified", "Description"):
        assert f"**{field}:** " in first.source


def test_keras_io_header():
    lines = read_script().split("\n")
    assert lines[0] == '"""'
    fields = ("Title", "Author", "Date created", "Last modified", "Description")
    for line, field in zip(lines[1:6], fields):
        if field == "Author" and line.startswith("Authors: "):
            continue
        assert line.startswith(f"{field}: "), (field, line)
        assert line[len(field) + 2 :].strip(), f"{field} is empty"
    description = lines[5][len("Description: ") :]
    assert description[0] == description[0].upper(), "not capitalised"
    assert description.endswith(".")
    assert len(description) < 100
    assert lines[6].startswith("Accelerator: ") and lines[6][len("Accelerator: ") :]
    assert lines[7] == '"""'


def test_keras_io_line_rules():
    lines = read_script().split("\n")
    trailing = [i + 1 for i, line in enumerate(lines) if line.endswith(" ")]
    assert not trailing, f"trailing spaces on lines {trailing}"
    one_line = [
        i + 1
        for i, line in enumerate(lines)
        if line.startswith('"""') and line.endswith('"""') and len(line) > 3
    ]
    assert not one_line, f'one-line """ blocks at the start of lines {one_line}'


def test_lines_of_code_counted_as_keras_io_counts_them():
    cell = [
        "import os",
        "",
        "# A comment.",
        "def f():",
        '    """One line."""',
        '    """A docstring',
        "    over two lines.",
        '    """',
        "    return 1",
        '"""',
        "x = 1",
    ]
    # import, def, return, the lone triple quote opens nothing, x = 1.
    assert count_lines_of_code(cell) == 4
    # A docstring that ends on its text line leaves the block open: keras.io's
    # count then skips the code after it, up to a line starting with quotes.
    assert count_lines_of_code(['"""Text', 'more."""', "x = 1", "y = 2"]) == 0


def honest_lines_of_code(text):
    """Lines of the code cells that hold code: not blank, not a comment, not part of
    a string statement (a docstring or a markdown block)."""
    strings = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            strings.update(range(node.lineno, node.end_lineno + 1))
    return sum(
        1
        for number, line in enumerate(text.split("\n"), start=1)
        if line.strip() and not line.strip().startswith("#") and number not in strings
    )


def test_fewer_than_300_lines_of_code():
    script = read_script()
    _, _, cells, _ = next_element(script)
    count = 0
    while cells:
        content, cell_type, cells, _ = next_element(cells)
        if cell_type == "code":
            count += count_lines_of_code(content.split("\n"))
    assert count < MAX_LINES_OF_CODE
    # No docstring hides code from the count: it is every line that holds code.
    assert count == honest_lines_of_code(script)
    script_to_notebook(script)  # Converts: under the limit.
    with pytest.raises(ValueError, match=f"Found {count} lines of code"):
        script_to_notebook(script, max_lines_of_code=count)


def test_black_formatted():
    result = subprocess.run(
        [sys.executable, "-m", "black", "--check", "--diff", SCRIPT],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
