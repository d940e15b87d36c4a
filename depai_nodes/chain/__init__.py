"""DePAI's chain bridge (ROS-free): config, typed errors, signer, client, events, Merkle trees,
a local anvil manager and deployment. See README.md in this folder."""

from .client import BoundContract, Call, ChainClient, SendOutcome
from .config import ChainConfig, KeySource, load_config, save_config
from .errors import *  # noqa: F401,F403  (the typed hierarchy is part of the API)
from .errors import __all__ as _errors
from .merkle import MerkleTree
from .signer import Signer, demo_signer

__all__ = ["BoundContract", "Call", "ChainClient", "SendOutcome", "ChainConfig", "KeySource", "load_config",
           "save_config", "MerkleTree", "Signer", "demo_signer", *_errors]
