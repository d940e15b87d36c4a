"""common/domains: one DePAI run per ROS domain on a machine (tests, benches, soaks)."""
import subprocess
import sys

import pytest

from depai_nodes.common.domains import DomainBusyError, acquire_domain


def test_a_held_domain_is_refused_to_another_process_and_free_again_once_released(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPAI_DOMAIN_LOCKS", str(tmp_path))
    domain, handle = acquire_domain()
    assert 1 <= domain <= 100
    probe = [sys.executable, "-c", f"from depai_nodes.common.domains import acquire_domain; acquire_domain({domain})"]
    busy = subprocess.run(probe, capture_output=True, text=True)
    assert busy.returncode != 0 and f"ROS_DOMAIN_ID {domain} is in use" in busy.stderr
    other, other_handle = acquire_domain()  # a free one is another
    assert other != domain
    handle.close()
    assert subprocess.run(probe, capture_output=True, text=True).returncode == 0
    other_handle.close()


def test_every_domain_taken_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPAI_DOMAIN_LOCKS", str(tmp_path))
    held = [acquire_domain()[1] for _ in range(100)]
    with pytest.raises(DomainBusyError, match="no free ROS_DOMAIN_ID"):
        acquire_domain()
    for h in held:
        h.close()
