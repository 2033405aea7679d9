"""The LLM write path: extract facts and reconcile them — superseding, never destroying.

One LLM call per ``add`` sees the new messages and the most similar memories of
the same scope and answers ADD / UPDATE / DELETE / NONE per fact. UPDATE and
DELETE *supersede*: the old memory stays with ``valid_to`` and ``superseded_by``
(history event ``SUPERSEDE`` / ``INVALIDATE``), the new one starts at the
observation time, so ``search(as_of=...)`` can answer "what did we know then".

If the call fails or its output cannot be parsed, ``LLMError`` is raised and the
raw input is kept in the journal (state ``failed``): ``Memory.pending()`` lists
it and ``Memory.retry_pending()`` runs it again — nothing is lost.

In the order an add runs: :mod:`.shown` picks the memories the prompt shows and their
words; :mod:`.add` is the operation (prompt, calls, journal on failure); :mod:`.decisions`
reads an answer into decisions; :mod:`.second_pass` checks every stated sentence is covered
and asks again about the rest; :mod:`.guarding` lets a supersession stand only when it is
about the same thing; :mod:`.apply` writes it all in one transaction. The prompts' words and
the text checks they rely on are in :mod:`memvault.llm`.
"""
