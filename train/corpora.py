"""The registry of dataset layouts: :func:`load_corpus` picks a loader by name.

Each loader (:mod:`.kdef`, :mod:`.ckplus`, :mod:`.jaffe`, :mod:`.rafdb`) builds a
:class:`~.corpus.Corpus`; this module imports them, and none of them imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from edgefer.runtime.datasets import load_class_folders

from .ckplus import load_ckplus, load_ckplus48
from .corpus import Corpus
from .jaffe import load_jaffe
from .kdef import load_kdef
from .pack import is_pack, load_pack, loader_options
from .rafdb import load_rafdb


def _load_folders(root: str | Path, size: tuple[int, int] = (48, 48), limit_per_class: int | None = None) -> Corpus:
    return Corpus("folders", load_class_folders(root, size, limit_per_class))


#: Layout name -> loader ``(root, size=..., **options) -> Corpus``; ``folders`` is any class-folder tree,
#: FER2013 included.
LOADERS: dict[str, Callable[..., Corpus]] = {
    "folders": _load_folders,
    "kdef": load_kdef,
    "ckplus": load_ckplus,
    "ckplus48": load_ckplus48,
    "jaffe": load_jaffe,
    "rafdb": load_rafdb,
}

#: Layouts :func:`load_corpus` understands.
CORPORA: tuple[str, ...] = tuple(LOADERS)

_LOADED: dict[tuple, Corpus] = {}


def load_corpus(kind: str, root: str | Path, size: tuple[int, int] = (48, 48), remember: bool = False,
                **options: Any) -> Corpus:
    """Load one dataset layout (see :data:`CORPORA`); ``options`` go to that layout's loader.

    With ``remember`` a load is reused for the life of the process, so k folds and
    several baselines over one dataset crop its faces once (Haar over KDEF takes
    minutes on a small CPU); files changed on disk meanwhile are not seen. A ``root`` ending in
    ``.npz`` is a face pack of ``kind`` (:mod:`.pack`): its faces, without running the loader.
    """
    if not remember:
        return _load(kind, root, tuple(size), **options)
    key = (kind, str(Path(root).resolve()), tuple(size), tuple(sorted(options.items())))
    if key not in _LOADED:
        _LOADED[key] = _load(kind, root, tuple(size), **options)
    return _LOADED[key]


def _load(kind: str, root: str | Path, size: tuple[int, int], **options: Any) -> Corpus:
    try:
        loader = LOADERS[kind]
    except KeyError:
        raise ValueError(f"unknown dataset layout {kind!r}; choose one of {', '.join(CORPORA)}") from None
    if is_pack(root) and kind != "folders":  # faces cropped before, elsewhere (`edgefer pack`)
        return load_pack(root, kind, size, loader_options(loader, options))
    return loader(root, size=size, **options)
