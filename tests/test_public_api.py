import subprocess
import sys

import rlreward


def test_every_exported_name_resolves():
    for name in rlreward.__all__:
        assert getattr(rlreward, name) is not None, name


def test_all_is_sorted_and_unique():
    names = [n for n in rlreward.__all__ if n != "__version__"]
    assert names == sorted(set(names))


def test_import_is_light():
    code = (
        "import sys, rlreward; "
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'verl', 'datasets') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


def test_unknown_attribute_is_an_attribute_error():
    try:
        rlreward.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
