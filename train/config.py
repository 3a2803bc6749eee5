"""``TrainConfig``: everything ``edgefer train`` can be told, in a module of its own.

The training steps (:mod:`.fit`, :mod:`.heads`, :mod:`.protocols`, ...) take it as an
argument; keeping it apart from :mod:`.trainer`, which calls them, means none of them
imports the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The face side a run takes when neither ``--input-size`` nor an ``--init-from`` model says: FER2013's 48 px.
DEFAULT_INPUT_SIZE = 48


@dataclass
class TrainConfig:
    """Everything ``edgefer train`` can be told; stored in ``meta.json``."""

    data: str
    out: str
    val: str | None = None
    input_size: int | None = None  # face side in pixels; None: the --init-from model's own, else DEFAULT_INPUT_SIZE
    alpha: float = 1.0
    weights: str | None = None
    epochs: int = 40
    batch_size: int = 64
    workers: int = 0  # threads building augmented batches; 0: one per core, at most 8
    lr: float = 2e-3
    label_smoothing: float = 0.1
    mixup: float = 0.0  # Beta(a, a) parameter of mixup; 0 turns it off
    dropout: float = 0.25
    bn_momentum: float | None = None  # None keeps Keras' 0.99; small sets need faster-moving statistics
    svm_c: list[float] = field(default_factory=lambda: [0.0003, 0.001, 0.003])
    svm_cv: int = 3
    augment: bool = True
    limit_per_class: int | None = None
    seed: int = 0
    resume: bool = False
    checkpoint_minutes: float = 5.0  # also save inside an epoch this often (TensorFlow's loop); 0: epoch ends only
    precise_bn: int = 0  # training batches whose statistics replace BatchNorm's moving averages each epoch; 0: off
    precision: str = "float32"  # one of precision.PRECISIONS: "mixed_bfloat16" computes in bfloat16 (precision.py)
    dataset: str = "folders"  # one of corpora.CORPORA
    protocol: str = "auto"  # one of protocols.PROTOCOLS
    angles: list[str] = field(default_factory=lambda: ["S", "HL", "HR"])  # KDEF only
    kdef_no_face: str = "borrow"  # KDEF photos Haar misses: "borrow" the straight photo's box, or "drop"
    test_fraction: float = 0.1
    val_fraction: float = 0.1
    folds: int = 10
    fold: int | None = None
    model: str = "mobilenet"  # one of model.MODELS or "hybrid"
    head: str = "linear-svm"  # one of heads.HEADS
    fc_width: int = 4096  # VGG16's FC width
    projection: int = 1024  # hybrid: VGG16 features projected to this width
    hybrid_parts: list[str] | None = None  # reuse trained MobileNet and VGG16 cnn.keras files
    hybrid_head_epochs: int = 10
    rbf_c: list[float] = field(default_factory=lambda: [1.0, 10.0])
    rbf_gamma: list[float] | None = None  # None: 0.25/d, 1/d, 4/d
    rff_components: int = 4096
    balance: str = "none"  # one of balance.BALANCE_MODES
    augment_config: str = ""  # e.g. "rotation_deg=15,flip=false"
    init_from: str | None = None  # transfer: a trained cnn.keras / model.keras
    teacher: str | None = None  # distillation: a trained cnn.keras whose soft labels join the targets (distill.py)
    distill_weight: float = 0.5  # the teacher's share of each target
    distill_temperature: float = 4.0  # softens the teacher's probabilities
    report_faces: int = 7
    contempt: str = "drop"  # CK+ 48x48: "drop" (7-class protocol) or "keep" (8-class protocol)
    svm_kernels: list[str] = field(default_factory=list)  # extra exact SVC heads, e.g. ["linear", "rbf", "poly"]
    # Other collections' faces added to class-folder training data, as "LAYOUT=ROOT" (e.g. "kdef=../KDEF"):
    # add_fraction of each one's people train, the rest stay unseen for `edgefer eval-cross`.
    add_faces: list[str] = field(default_factory=list)
    add_fraction: float = 0.5
