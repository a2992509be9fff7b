"""Minimal ctypes binding to libhs (Vectorscan), shared by the rule checkers,
fp_scan.py and bench/scan: compile one pattern or many, scan a buffer.

    hs = hslib.load()            # None when libhs is not loadable
    db, err = hs.compile(r"\\bsk_[a-z]{8}\\b", ["caseless"])
    hits = hs.scan(db, b"...")   # [(id, from, to), ...]
    hs.free(db)
"""

import ctypes
import ctypes.util


class Hyperscan:
    """libhs through ctypes. Flags are given as the rule files name them."""

    FLAG = {"caseless": 1, "dotall": 2, "multiline": 4, "utf8": 32}
    SINGLEMATCH = 8
    SOM_LEFTMOST = 256
    MODE_BLOCK = 1
    MODE_STREAM = 2
    SOM_HORIZON_LARGE = 1 << 24

    class Err(ctypes.Structure):
        _fields_ = [("message", ctypes.c_char_p), ("expression", ctypes.c_int)]

    CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint, ctypes.c_ulonglong,
                          ctypes.c_ulonglong, ctypes.c_uint, ctypes.c_void_p)

    def __init__(self):
        lib = ctypes.CDLL(ctypes.util.find_library("hs") or "libhs.so.5")
        perr = ctypes.POINTER(ctypes.POINTER(self.Err))
        pdb = ctypes.POINTER(ctypes.c_void_p)
        lib.hs_compile.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint,
                                   ctypes.c_void_p, pdb, perr]
        lib.hs_compile_multi.argtypes = [
            ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_uint), ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p,
            pdb, perr]
        lib.hs_alloc_scratch.argtypes = [ctypes.c_void_p, pdb]
        lib.hs_scan.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint,
                                ctypes.c_void_p, self.CB, ctypes.c_void_p]
        lib.hs_free_database.argtypes = [ctypes.c_void_p]
        lib.hs_free_scratch.argtypes = [ctypes.c_void_p]
        lib.hs_free_compile_error.argtypes = [ctypes.POINTER(self.Err)]
        self.lib = lib

    def bits(self, flags, extra=0):
        """hs flag bits for a rule's flag names, or'ed with `extra`."""
        b = extra
        for name in flags or ():
            b |= self.FLAG[name]
        return b

    def _result(self, rc, db, err):
        if rc == 0:
            return db, None
        msg = err.contents.message.decode() if err else "error %d" % rc
        where = err.contents.expression if err else -1
        if err:
            self.lib.hs_free_compile_error(err)
        return None, (msg, where)

    def compile(self, pattern, flags, mode=MODE_BLOCK, extra=0):
        """(db, None), or (None, (message, expression index)) on error."""
        db = ctypes.c_void_p()
        err = ctypes.POINTER(self.Err)()
        rc = self.lib.hs_compile(pattern.encode("utf-8"), self.bits(flags, extra), mode, None,
                                 ctypes.byref(db), ctypes.byref(err))
        return self._result(rc, db, err)

    def compile_multi(self, patterns, flag_lists, mode=MODE_BLOCK, extra=0):
        """One database of many patterns; match ids are indexes into `patterns`.
        `extra` is one value for all patterns or a list (one per pattern).
        Returns like compile()."""
        n = len(patterns)
        extras = extra if isinstance(extra, (list, tuple)) else [extra] * n
        exprs = (ctypes.c_char_p * n)(*[p.encode("utf-8") for p in patterns])
        fl = (ctypes.c_uint * n)(*[self.bits(f, x) for f, x in zip(flag_lists, extras)])
        ids = (ctypes.c_uint * n)(*range(n))
        db = ctypes.c_void_p()
        err = ctypes.POINTER(self.Err)()
        rc = self.lib.hs_compile_multi(exprs, fl, ids, n, mode, None, ctypes.byref(db),
                                       ctypes.byref(err))
        return self._result(rc, db, err)

    def scratch(self, db):
        s = ctypes.c_void_p()
        if self.lib.hs_alloc_scratch(db, ctypes.byref(s)) != 0:
            raise RuntimeError("hs_alloc_scratch failed")
        return s

    def scan(self, db, data, scratch=None, first=False):
        """Every (id, from, to) reported for `data` (bytes; str is UTF-8 encoded),
        or only the first one when `first`. A scratch made for db may be passed
        to avoid allocating one per call."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        own = scratch is None
        if own:
            scratch = self.scratch(db)
        hits = []

        def on_match(i, frm, to, _flags, _ctx):
            hits.append((i, frm, to))
            return 1 if first else 0

        rc = self.lib.hs_scan(db, data, len(data), 0, scratch, self.CB(on_match), None)
        if own:
            self.lib.hs_free_scratch(scratch)
        if rc not in (0, -3):  # -3: HS_SCAN_TERMINATED, asked for by `first`
            raise RuntimeError("hs_scan failed: %d" % rc)
        return hits

    def free(self, db):
        self.lib.hs_free_database(db)

    def free_scratch(self, scratch):
        self.lib.hs_free_scratch(scratch)


def load():
    """A Hyperscan, or None when libhs cannot be loaded."""
    try:
        return Hyperscan()
    except (OSError, AttributeError):
        return None
