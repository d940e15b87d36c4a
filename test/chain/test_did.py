"""MachineDID: the peaq DID precompile ABI, every path including the reverts."""

import pytest

from depai_nodes.chain.errors import ContractRevertError

from chainkit import MACHINE, STRANGER


def test_add_read_update_remove_with_events(chain):
    c = chain.client(MACHINE)
    did = c.contract("MachineDID")
    me = c.signer.address
    start = c.block_number() + 1
    r = did.transact("addAttribute", me, b"depai:machine", b"tb3-burger", 0)
    assert r.status == 1
    a = did.call("readAttribute", me, b"depai:machine")
    assert a["name"] == b"depai:machine" and a["value"] == b"tb3-burger"
    assert a["validity"] == 2**32 - 1 and a["created"] > 0
    assert did.call("isValid", me, b"depai:machine") is True

    did.transact("updateAttribute", me, b"depai:machine", b"tb3-waffle", 10)
    a = did.call("readAttribute", me, b"depai:machine")
    assert a["value"] == b"tb3-waffle"
    assert a["validity"] == c.block_number() + 10

    did.transact("removeAttribute", me, b"depai:machine")
    with pytest.raises(ContractRevertError) as e:
        did.call("readAttribute", me, b"depai:machine")
    assert e.value.error == "AttributeNotFound"

    events = [ev["event"] for ev in c.get_events(did, "AddAttribute", start)]
    events += [ev["event"] for ev in c.get_events(did, "UpdateAttribute", start)]
    events += [ev["event"] for ev in c.get_events(did, "RemoveAttribute", start)]
    assert events == ["AddAttribute", "UpdateAttribute", "RemoveAttribute"]
    add = c.get_events(did, "AddAttribute", start)[0]
    assert add["sender"] == me and add["did_account"] == me and add["value"] == b"tb3-burger"


def test_validity_expires(chain):
    c = chain.client(MACHINE)
    did = c.contract("MachineDID")
    me = c.signer.address
    did.transact("addAttribute", me, b"cert", b"x", 2)
    assert did.call("isValid", me, b"cert")
    c.mine(3)
    assert not did.call("isValid", me, b"cert")


def test_unauthorised_write_reverts_with_reason(chain):
    machine = chain.address(MACHINE)
    stranger = chain.client(STRANGER).contract("MachineDID")
    for fn, args in [("addAttribute", (machine, b"n", b"v", 0)), ("updateAttribute", (machine, b"n", b"v", 0)),
                     ("removeAttribute", (machine, b"n"))]:
        with pytest.raises(ContractRevertError) as e:
            stranger.transact(fn, *args)
        assert e.value.error == "NotDidOwner"
        assert e.value.error_args == {"sender": chain.address(STRANGER), "didAccount": machine}
        assert "NotDidOwner" in str(e.value)


@pytest.mark.parametrize("name,error", [(b"x" * 65, "InvalidName"), (b"", "InvalidName")])
def test_bad_names(chain, name, error):
    c = chain.client(MACHINE)
    with pytest.raises(ContractRevertError) as e:
        c.contract("MachineDID").transact("addAttribute", c.signer.address, name, b"v", 0)
    assert e.value.error == error and e.value.error_args["length"] == len(name)


def test_name_of_64_bytes_is_allowed(chain):
    c = chain.client(MACHINE)
    did = c.contract("MachineDID")
    did.transact("addAttribute", c.signer.address, b"n" * 64, b"v", 0)
    assert did.call("readAttribute", c.signer.address, b"n" * 64)["value"] == b"v"


def test_one_attribute_per_name(chain):
    c = chain.client(MACHINE)
    did = c.contract("MachineDID")
    me = c.signer.address
    did.transact("addAttribute", me, b"n", b"v", 0)
    with pytest.raises(ContractRevertError) as e:
        did.transact("addAttribute", me, b"n", b"w", 0)
    assert e.value.error == "AttributeExists"
    for fn, args in [("updateAttribute", (me, b"missing", b"v", 0)), ("removeAttribute", (me, b"missing"))]:
        with pytest.raises(ContractRevertError) as e:
            did.transact(fn, *args)
        assert e.value.error == "AttributeNotFound"


def test_value_too_long(chain):
    c = chain.client(MACHINE)
    with pytest.raises(ContractRevertError) as e:
        c.contract("MachineDID").transact("addAttribute", c.signer.address, b"n", b"v" * 2561, 0)
    assert e.value.error == "ValueTooLong"
