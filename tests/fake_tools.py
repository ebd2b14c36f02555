"""`fake_tool`: an executable shell script standing in for a command-line tool in tests."""


def fake_tool(folder, name, script):
    """Writes `folder/name`, a `/bin/sh` script running `script`, made executable; returns its path."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    return path
