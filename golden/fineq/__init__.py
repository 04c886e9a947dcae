"""FineQ: fine-grained mixed-precision 2.33-bit weight quantization (golden model).

The contract is ``shared/spec/fineq-format.md``; ``docs/format.md`` restates it
and records the points the project decided.
"""

from .codec import decode_block, encode_block
from .engine import EngineConfig
from .errors import FineQError, FormatError, QuantizationError, QuantizationWarning
from .fileio import FORMAT_VERSION, load, save
from .gemm import gemm, gemm_hw
from .modelfile import load_model, save_model
from .pack import unpack
from .qmatrix import QuantizedMatrix, from_levels, quantize
from .torch_utils import quantize_model

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "EngineConfig",
    "FineQError",
    "FormatError",
    "QuantizationError",
    "QuantizationWarning",
    "QuantizedMatrix",
    "decode_block",
    "encode_block",
    "from_levels",
    "gemm",
    "gemm_hw",
    "load",
    "load_model",
    "quantize",
    "quantize_model",
    "save",
    "save_model",
    "unpack",
]
