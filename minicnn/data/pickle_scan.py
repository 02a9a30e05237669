"""Read a pickle's opcodes *before* unpickling it, and refuse what a dataset never holds.

The restricted unpickler (:mod:`minicnn.data.safe_pickle`) stops a pickle
from calling anything dangerous, but plain data can hurt too:

* **nesting**: ``((((...)))...)`` 300,000 tuples deep is a few hundred
  kilobytes of opcodes; building it is fine, but hashing it as a dict key
  (or printing it, or freeing it) recurses once per level in C and crashes
  the interpreter with a segmentation fault;
* **volume**: every opcode builds an object, so a file can ask for millions
  of them;
* **memo indices**: ``LONG_BINPUT 2**31`` makes the unpickler grow its memo
  table to billions of slots.

:func:`scan_pickle` walks the opcodes (:func:`opcodes`: a lean version of
:func:`pickletools.genops`, which only parses and never builds, three times
faster because it decodes only the arguments the scan needs: ~15 ms for a
CIFAR-10 batch) and simulates
the unpickler's stack with one small record per object holding its nesting
depth. It refuses, with a :class:`DatasetError` naming the file:

* a depth above :data:`MAX_DEPTH` (a CIFAR-10 batch is 6 deep: dict -> array
  -> state tuple -> dtype -> its arguments);
* more than :data:`MAX_OPCODES` opcodes (a CIFAR-10 batch has about 30,000);
* a memo index larger than the number of opcodes read so far;
* opcodes that a dataset pickle never uses (persistent ids, class
  instantiation ``INST``/``OBJ``/``NEWOBJ``, the extension registry,
  out-of-band buffers, sets) -- as :class:`UnsafePickleError`;
* changing an object after it was stored inside another one. ``pickle``
  itself only does that for self-referencing data, which a dataset never
  holds; forbidding it makes the depth of every finished object final, so
  the depth count above cannot be dodged, and it rules out cycles.

Nothing is built, so a refused file costs one pass over its bytes.
"""

from __future__ import annotations

import pickletools

from minicnn.data.errors import DatasetError, UnsafePickleError

#: Deepest nesting admitted (a CIFAR-10 batch: 6; Python's recursion limit: ~1,000).
MAX_DEPTH = 32
#: Most opcodes admitted, i.e. objects built (a CIFAR-10 batch: ~30,000).
MAX_OPCODES = 1_000_000

# Opcodes grouped by their effect on the unpickler's stack.
_PUSH = frozenset({  # push one new object built from the opcode's argument alone
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
    "NONE", "NEWTRUE", "NEWFALSE", "EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "GLOBAL",
})
_MEMO_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
_MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_BUILD = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "REDUCE": 2, "STACK_GLOBAL": 2}  # pop n, push 1
_BUILD_MARK = frozenset({"TUPLE", "LIST", "DICT"})  # pop to the mark, push 1
_UPDATE = {"APPEND": 1, "SETITEM": 2, "BUILD": 1}  # pop n, change the object below them
_UPDATE_MARK = frozenset({"APPENDS", "SETITEMS"})  # pop to the mark, change the object below
_NO_EFFECT = frozenset({"PROTO", "FRAME"})
_REFUSED = {
    "PERSID": "a persistent id", "BINPERSID": "a persistent id",
    "INST": "a class instance", "OBJ": "a class instance", "NEWOBJ": "a class instance",
    "NEWOBJ_EX": "a class instance", "EXT1": "an extension-registry object",
    "EXT2": "an extension-registry object", "EXT4": "an extension-registry object",
    "NEXT_BUFFER": "an out-of-band buffer", "READONLY_BUFFER": "an out-of-band buffer",
    "EMPTY_SET": "a set", "ADDITEMS": "a set", "FROZENSET": "a frozenset",
}


def _arg_rules() -> dict[int, tuple[str, int]]:
    """Opcode byte -> (name, how long its argument is), from :mod:`pickletools`' table.

    The length is ``n >= 0`` fixed bytes, or one of pickletools' codes: up to a
    newline, or counted by a 1-, 4- (signed or unsigned) or 8-byte prefix.
    """
    rules = {}
    for op in pickletools.opcodes:
        rules[ord(op.code)] = (op.name, 0 if op.arg is None else op.arg.n)
    return rules


_RULES = _arg_rules()
_COUNTED = {  # pickletools code -> (prefix bytes, signed)
    pickletools.TAKEN_FROM_ARGUMENT1: (1, False), pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
    pickletools.TAKEN_FROM_ARGUMENT4U: (4, False), pickletools.TAKEN_FROM_ARGUMENT8U: (8, False),
}
_MEMO_ARG = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"})
_SHORT = pickletools.TAKEN_FROM_ARGUMENT1


def _arg_end(data: bytes, pos: int, name: str, n: int) -> int:
    """Where the variable-length argument starting at ``pos`` ends (``n < 0``)."""
    if n == pickletools.UP_TO_NEWLINE:
        for _ in range(2 if name in ("GLOBAL", "INST") else 1):  # module and name lines
            pos = data.index(b"\n", pos) + 1  # ValueError if there is none
        return pos
    width, signed = _COUNTED[n]
    size = int.from_bytes(data[pos:pos + width], "little", signed=signed)
    if size < 0:
        raise ValueError(f"{name}: negative length {size} at byte {pos}")
    return pos + width + size


def _memo_index(data: bytes, start: int, end: int, name: str, n: int) -> int:
    """The memo index of PUT/GET (decimal and a newline) or BINPUT ... (1 or 4 bytes)."""
    if n >= 0:
        return int.from_bytes(data[start:end], "little")
    digits = data[start:end - 1]
    if not digits.isdigit():
        raise ValueError(f"{name} with a malformed memo index {digits[:20]!r}")
    return int(digits)


def opcodes(data: bytes):
    """Yield ``(name, arg)`` for each opcode up to STOP; ``arg`` is decoded only
    for memo opcodes (an int), else None. Raises ValueError if truncated or garbled.

    The same opcode boundaries as :func:`pickletools.genops` (and the unpickler):
    every argument's length follows pickletools' table.
    """
    pos, end = 0, len(data)
    while True:
        if pos >= end:
            raise ValueError("pickle exhausted before seeing STOP")
        try:
            name, n = _RULES[data[pos]]
        except KeyError:
            raise ValueError(f"unknown opcode {data[pos:pos + 1]!r} at byte {pos}") from None
        start = pos + 1
        if n >= 0:
            pos = start + n
        elif n == _SHORT and start < end:  # SHORT_BINBYTES ...: a 1-byte length (inlined: common)
            pos = start + 1 + data[start]
        else:
            pos = _arg_end(data, start, name, n)
        if pos > end:
            raise ValueError(f"{name} at byte {start - 1} runs past the end of the data")
        yield name, (_memo_index(data, start, pos, name, n) if name in _MEMO_ARG else None)
        if name == "STOP":
            return


class _Obj:
    """What the scan knows of one object: how deep it nests, and whether it
    is already stored inside another object (then it must not change)."""

    __slots__ = ("depth", "stored")

    def __init__(self, depth: int = 1):
        self.depth = depth
        self.stored = False


class _Scan:
    """The simulated unpickler state for one pickle (see :func:`scan_pickle`)."""

    def __init__(self, source: str):
        self.source = source
        self.stack: list[_Obj] = []
        self.marks: list[int] = []  # stack heights at each MARK
        self.memo: dict[int, _Obj] = {}
        self.count = 0

    def fail(self, what: str) -> DatasetError:
        return DatasetError(f"{self.source}: refused to unpickle: {what}")

    def pop(self, n: int) -> list[_Obj]:
        floor = self.marks[-1] if self.marks else 0
        if len(self.stack) - floor < n:
            raise self.fail("malformed pickle (stack underflow); the file is corrupt")
        items = self.stack[len(self.stack) - n:]
        del self.stack[len(self.stack) - n:]
        return items

    def pop_mark(self) -> list[_Obj]:
        if not self.marks:
            raise self.fail("malformed pickle (no MARK); the file is corrupt")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def depth_of(self, items: list[_Obj]) -> int:
        """Store ``items`` in a new or changed object; its depth is one more than theirs."""
        for it in items:
            it.stored = True
        depth = 1 + max((it.depth for it in items), default=0)
        if depth > MAX_DEPTH:
            raise self.fail(
                f"objects nested more than {MAX_DEPTH} deep; a dataset pickle nests about 6 "
                "deep, so the file is corrupt or malicious (deep nesting can crash Python)"
            )
        return depth

    def update(self, items: list[_Obj]) -> None:
        """APPEND(S) / SETITEM(S) / BUILD: store ``items`` in the object below them."""
        if not self.stack or len(self.stack) == (self.marks[-1] if self.marks else 0):
            raise self.fail("malformed pickle (stack underflow); the file is corrupt")
        depth = self.depth_of(items)
        target = self.stack[-1]
        if target.stored:
            raise self.fail(
                "an object is changed after it was stored inside another one (self-referencing "
                "data); a dataset pickle never does that"
            )
        target.depth = max(target.depth, depth)

    def memo_put(self, name: str, arg) -> None:
        if not self.stack:
            raise self.fail("malformed pickle (memo store with an empty stack)")
        index = len(self.memo) if name == "MEMOIZE" else arg
        if not 0 <= index <= self.count:
            raise self.fail(f"memo index {index} after only {self.count} opcodes; the file is corrupt")
        self.memo[index] = self.stack[-1]

    def memo_get(self, arg) -> None:
        try:
            self.stack.append(self.memo[arg])
        except KeyError:
            raise self.fail(f"memo index {arg} used before it was set; the file is corrupt") from None

    def step(self, name: str, arg) -> None:
        """Apply one opcode to the simulated stack."""
        if name in _PUSH:
            self.stack.append(_Obj())
        elif name in _MEMO_PUT:
            self.memo_put(name, arg)
        elif name in _MEMO_GET:
            self.memo_get(arg)
        elif name == "MARK":
            self.marks.append(len(self.stack))
        elif name in _BUILD:
            self.stack.append(_Obj(self.depth_of(self.pop(_BUILD[name]))))
        elif name in _BUILD_MARK:
            self.stack.append(_Obj(self.depth_of(self.pop_mark())))
        elif name in _UPDATE:
            self.update(self.pop(_UPDATE[name]))
        elif name in _UPDATE_MARK:
            self.update(self.pop_mark())
        elif name == "POP":
            if self.marks and len(self.stack) == self.marks[-1]:
                self.marks.pop()  # what pickle does: POP right after MARK drops the mark
            else:
                self.pop(1)
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            self.stack.append(self.pop(1)[0])
            self.stack.append(self.stack[-1])
        elif name == "STOP":
            self.pop(1)
        elif name not in _NO_EFFECT:
            what = _REFUSED.get(name, "an unknown opcode")
            raise UnsafePickleError(
                f"{self.source}: refused to unpickle: opcode {name} ({what}); a dataset pickle "
                "only holds dicts, lists, tuples, bytes, str, numbers and NumPy arrays"
            )


def scan_pickle(data: bytes, *, source: str = "<bytes>") -> None:
    """Check ``data``'s opcodes (see the module docstring); raise :class:`DatasetError` if refused.

    A truncated or garbled stream raises :class:`DatasetError` too.
    """
    scan = _Scan(source)
    push, memo, step = scan.stack.append, scan.memo, scan.step
    try:
        for count, (name, arg) in enumerate(opcodes(data), 1):
            if count > MAX_OPCODES:
                raise scan.fail(
                    f"more than {MAX_OPCODES:,} opcodes (objects); a CIFAR-10 batch has about "
                    "30,000, so the file is corrupt or malicious"
                )
            if name in _PUSH:  # the common cases, inlined for speed: a new plain object
                push(_Obj())
            elif name == "MEMOIZE" and scan.stack:  # ... and remembering it
                memo[len(memo)] = scan.stack[-1]
            else:
                scan.count = count
                step(name, arg)
    except DatasetError:
        raise
    except ValueError as e:  # unknown opcodes, short or malformed arguments
        raise DatasetError(
            f"{source}: not a complete pickle ({e}); the file is truncated or corrupt -- "
            "delete it and fetch it again"
        ) from e
