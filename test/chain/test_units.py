"""FLEET amounts as people read them (depai_nodes/chain/units.py): exact where money is named."""
from depai_nodes.chain.units import TOKEN, fleet, fleet_rounded, format_amount


def test_exact_amounts_keep_every_base_unit():
    assert format_amount(1_500_000 * TOKEN) == "1,500,000"
    assert format_amount(3) == "0.000000000000000003"
    assert format_amount(TOKEN + 1) == "1.000000000000000001"
    assert format_amount(-TOKEN // 2) == "-0.5"
    assert fleet(2_500_000_000_000_000_000) == "2.5 FLEET"
    assert fleet(0) == "0 FLEET"


def test_rounded_cells_are_short_and_say_unknown():
    assert fleet_rounded(None) == "-"
    assert fleet_rounded(12_345 * TOKEN // 1000) == "12.35 FLEET"
    assert fleet_rounded(100 * TOKEN) == "100 FLEET"
