"""memvault for CrewAI.

* :class:`MemvaultStorage`: a ``StorageBackend`` for CrewAI's unified ``Memory``
  (``crewai.Memory(storage=MemvaultStorage(...))``), and
  :class:`MemvaultStorageFactory` for ``set_memory_storage_factory``.
* :class:`RememberTool`, :class:`RecallTool`, :class:`ForgetTool`: agent tools that
  call memvault directly, in a scope fixed when the tool is built.
* :func:`embedding_function`: memvault's offline embedder as CrewAI's ``embedder=``.

See docs/integrations/crewai.md.
"""

from memvault_crewai.embedding import embedding_function
from memvault_crewai.storage import (
    DEFAULT_AGENT_ID,
    ROOT_LABEL,
    MemvaultStorage,
    MemvaultStorageFactory,
    ScopeMapping,
    vector_space_for,
)
from memvault_crewai.tools import (
    ForgetTool,
    RecallTool,
    RememberTool,
    create_memory_tools,
    format_memories,
)

__version__ = "0.1.0"
__all__ = [
    "DEFAULT_AGENT_ID",
    "ROOT_LABEL",
    "ForgetTool",
    "MemvaultStorage",
    "MemvaultStorageFactory",
    "RecallTool",
    "RememberTool",
    "ScopeMapping",
    "create_memory_tools",
    "embedding_function",
    "format_memories",
    "vector_space_for",
]
