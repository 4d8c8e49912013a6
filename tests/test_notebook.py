"""The example as keras.io publishes it: converted to a notebook and executed in a
Jupyter kernel, run as a plain command with no flags, and its keras.io header and
formatting.

Both runs read a small fake `horses_or_humans` (8 train and 4 test images) that
tensorflow-datasets' own builder downloads from a local HTTP server and prepares
(tests/fake_dataset.py), found through `TFDS_DATA_DIR` as a reader's real data is
found in ~/tensorflow_datasets: no flag points at it. Everything runs offline.
"""

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "gradient_centralization.py")
FAKE_DATASET = os.path.join(ROOT, "tests", "fake_dataset.py")
# What the example prints when it compares the two optimizers.
COMPARISON = (
    "Not using Gradient Centralization",
    "Using Gradient Centralization",
    "Test accuracy",
)
# One training cell of 10 epochs x 2 optimizers on 8 images takes about a minute
# on 2 cores; the limit leaves room for a slow CI machine.
CELL_TIMEOUT = 900


@pytest.fixture(scope="session")
def prepared_data_dir(tmp_path_factory):
    """A tfds data directory holding a fake `horses_or_humans` (8 train, 4 test).

    tests/fake_dataset.py runs tfds' real download-and-prepare path against zips
    served from 127.0.0.1; it runs in a subprocess, so that the patched builder
    URLs and the server never touch this process.
    """
    data_dir = tmp_path_factory.mktemp("tfds")
    result = subprocess.run(
        [sys.executable, FAKE_DATASET, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    sizes = json.loads(result.stdout.strip().splitlines()[-1])
    assert sizes == {"train": 8, "test": 4}
    assert (data_dir / "horses_or_humans" / "3.0.0" / "dataset_info.json").is_file()
    return data_dir


def example_env(data_dir):
    """The environment of a reader's run, with the fake dataset as tfds' default."""
    env = dict(os.environ, TFDS_DATA_DIR=str(data_dir))
    # This venv's python and tools first, as for a reader who activated it.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # A kernel shows matplotlib figures inline only with its own default backend.
    env.pop("MPLBACKEND", None)
    return env


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


def script_to_notebook(text):
    """The notebook keras.io makes of a tutobook script."""
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
            cells.append(nbformat.v4.new_code_cell(source))
        else:
            cells.append(nbformat.v4.new_markdown_cell(source))
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
def executed_notebook(prepared_data_dir, tmp_path_factory):
    """The keras.io notebook of the example, executed top to bottom (nbconvert
    --execute's way: one kernel, cells in order, stop at the first error)."""
    from nbclient import NotebookClient

    folder = tmp_path_factory.mktemp("notebook")
    notebook = script_to_notebook(read_script())
    # A last cell of our own: which python the kernel ran.
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
    client.execute(env=example_env(prepared_data_dir), cwd=str(folder), cleanup_kc=True)
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
    assert "Training images: 8\n" in stdout and "Test images: 4\n" in stdout


def test_notebook_shows_the_curves_inline(executed_notebook):
    images = [
        output
        for output in outputs_of(executed_notebook)
        if output.output_type in ("display_data", "execute_result")
        and "image/png" in output.get("data", {})
    ]
    assert images, "no inline image/png output: the training curves are not shown"


# --- The plain command, with no flags ---


def test_script_runs_with_no_flags(prepared_data_dir, tmp_path):
    """`python gradient_centralization.py`: default epochs (10), batch size (128)
    and learning rate (1e-4), on the dataset that tfds finds by default."""
    result = subprocess.run(
        [sys.executable, SCRIPT],
        cwd=tmp_path,
        env=example_env(prepared_data_dir),
        capture_output=True,
        text=True,
        timeout=CELL_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Traceback" not in result.stderr
    for line in COMPARISON:
        assert line in result.stdout
    assert "Total params: 1,704,097" in result.stdout
    assert "Training images: 8\n" in result.stdout
    assert "Test images: 4\n" in result.stdout
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


def test_black_formatted():
    result = subprocess.run(
        [sys.executable, "-m", "black", "--check", "--diff", SCRIPT],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
