"""Run explicitly by test_data_sets.py (not collected: no test_ prefix): a test that needs the data."""


def test_needs_data(shared_data):
    assert (shared_data / "maps" / "depot.yaml").is_file()
