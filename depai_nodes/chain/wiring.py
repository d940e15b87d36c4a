"""One way for a node to get its chain config and client from its parameters.

Before this, every chain node repeated the same config + key loading block. Now only the wallet
asks for a signer (``signing=True``); every other node gets a read-only client and cannot sign
even by mistake. Errors come out as the node convention's ParameterError naming the parameter.
"""

from __future__ import annotations

from .client import ChainClient
from .config import ChainConfig, load_config
from .errors import ChainError

__all__ = ["load_node_chain", "FLEET_CONTRACTS"]

# What `Fleet` binds to: a config missing one cannot serve a node (deploy first).
FLEET_CONTRACTS = ("FleetToken", "FleetPolicy", "DataRegistry", "TaskMarket")


def load_node_chain(params, *, signing: bool = False, require: tuple[str, ...] = FLEET_CONTRACTS) -> tuple[ChainConfig, ChainClient]:
    """(config, client) from a node's validated parameters.

    ``params.chain_config``: config path ('' = $DEPAI_CHAIN_CONFIG or .depai/chain.local.json).
    With ``signing`` (the wallet only) the key comes from ``params.demo_index`` / ``params.keystore``
    over the config's ``key`` section. The client does not contact the chain here: a node starts
    even when the chain is down and reports that per request; the chain id is verified before
    the first transaction. A config without an address for one of ``require`` is a
    configuration mistake (ParameterError on chain_config), not a crash to respawn.
    """
    from depai_nodes.common.params import ParameterError

    try:
        config = load_config(params.chain_config or None)
    except ChainError as e:
        raise ParameterError("chain_config", str(e)) from None
    for name in require:
        try:
            config.address(name)
        except ChainError as e:
            raise ParameterError("chain_config", str(e)) from None
    signer = None
    if signing:
        from .signer import signer_for

        keystore = getattr(params, "keystore", "")
        try:
            signer = signer_for(config, demo_index=getattr(params, "demo_index", -1), keystore=keystore)
        except ChainError as e:
            raise ParameterError("keystore" if keystore else "demo_index", str(e)) from None
    return config, ChainClient(config, signer, verify_chain=False)
