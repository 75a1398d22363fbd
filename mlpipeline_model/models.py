"""Model architectures shared by the trainer, evaluator, explainer and dashboard.

Models are pickled into MLflow with this package as their code (``code_paths``), so every class
here must stay importable under the same name, and only torch and torchvision may be imported.
Every model takes float32 ``N×C×H×W`` input scaled to ``[0, 1]`` and normalizes it itself with
the training set's mean and std, so a consumer needs no preprocessing beyond resizing.
"""

import math
from collections.abc import Sequence

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Four conv blocks and global average pooling: trains in CPU minutes on 28–128 px images."""

    def __init__(self, in_channels: int, width: int = 32) -> None:
        super().__init__()
        chans = [in_channels, width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=False),
            ]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.out_features = chans[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class ImageClassifier(nn.Module):
    """A convolutional body, global average pooling and a linear head, with input normalization.

    Attributes:
        arch: Architecture name, one of ``MODEL_NAMES``.
        body: Maps the normalized image to a ``N×F×h×w`` feature map.
        head: Linear layer from the pooled ``F`` features to class logits.
        target_layer: The last convolutional block, for Grad-CAM (``target_layers``: it alone,
            as for an ``Ensemble``).
    """

    def __init__(
        self,
        arch: str,
        body: nn.Module,
        out_features: int,
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        target_layer: nn.Module,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.num_classes = num_classes
        self.in_channels = len(mean)
        self.register_buffer(
            "mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        self.body = body
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(out_features, num_classes)
        self.target_layer = target_layer

    @property
    def target_layers(self) -> list[nn.Module]:
        return [self.target_layer]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (``N×F``) of images in ``[0, 1]``."""
        x = (x - self.mean) / self.std
        return torch.flatten(self.pool(self.body(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))

    def features_and_logits(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One pass: the penultimate features (a list of one ``N×F``, as an ``Ensemble``'s of
        one member) and the logits, for the out-of-distribution check (``mlpipeline_model.ood``)."""
        features = self.embed(x)
        return [features], self.head(self.dropout(features))


class Ensemble(nn.Module):
    """A deep ensemble: the mean class probabilities of independently trained classifiers.

    ``forward`` returns the log of the members' mean softmax. These act as logits for every
    consumer (their softmax is that mean), so the evaluator, explainer and predictor treat an
    ensemble like one classifier.

    Attributes:
        members: The classifiers (``ImageClassifier``), trained alike from different seeds.
        target_layers: Each member's last convolutional block; Grad-CAM averages over them.
    """

    def __init__(self, members: Sequence[ImageClassifier]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0]
        self.members = nn.ModuleList(members)
        self.arch = first.arch
        self.num_classes = first.num_classes
        self.in_channels = first.in_channels

    @property
    def target_layers(self) -> list[nn.Module]:
        return [m.target_layer for m in self.members]

    @property
    def target_layer(self) -> nn.Module:
        """The first member's (for code that takes one layer; prefer ``target_layers``)."""
        return self.members[0].target_layer

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The members' penultimate features side by side (``N×(k·F)``)."""
        return torch.cat([m.embed(x) for m in self.members], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._combined([m(x) for m in self.members])

    def features_and_logits(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One pass: each member's penultimate features (``N×F``, first member first) and the
        ensemble's logits (as ``forward``)."""
        passes = [m.features_and_logits(x) for m in self.members]
        return [f for features, _ in passes for f in features], self._combined(
            [logits for _, logits in passes]
        )

    def _combined(self, logits: list[torch.Tensor]) -> torch.Tensor:
        """The log of the members' mean softmax."""
        log_probs = torch.stack([torch.log_softmax(each, dim=1) for each in logits])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))


def _resnet18_body(in_channels: int) -> tuple[nn.Module, int, nn.Module]:
    from torchvision.models import resnet18  # here, not at import: torchvision costs ~1.5 s

    net = resnet18(weights=None)
    # Small medical images (28–128 px): a 3×3 stem without max-pooling keeps spatial detail.
    net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    body = nn.Sequential(
        net.conv1, net.bn1, net.relu, net.layer1, net.layer2, net.layer3, net.layer4
    )
    return body, 512, net.layer4


def _mobilenet_body(in_channels: int) -> tuple[nn.Module, int, nn.Module]:
    from torchvision.models import mobilenet_v3_small  # imported when used, as resnet18

    net = mobilenet_v3_small(weights=None)
    stem = net.features[0][0]
    net.features[0][0] = nn.Conv2d(
        in_channels, stem.out_channels, 3, stride=1, padding=1, bias=False
    )
    return net.features, 576, net.features[-1]


def _smallcnn_body(in_channels: int, width: int) -> tuple[nn.Module, int, nn.Module]:
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    body = SmallCNN(in_channels, width)
    return body, body.out_features, body.features[-1]


# Each architecture's body (features to pool), its feature count and its Grad-CAM layer; a new
# one is added here alone (tests/mlpipeline_model/test_models.py runs every one).
_BODIES = {
    "smallcnn": _smallcnn_body,
    "resnet18": lambda in_channels, width: _resnet18_body(in_channels),
    "mobilenet_v3_small": lambda in_channels, width: _mobilenet_body(in_channels),
}
MODEL_NAMES = tuple(_BODIES)


def build_model(
    arch: str,
    in_channels: int,
    num_classes: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    dropout: float = 0.0,
    width: int = 32,
) -> ImageClassifier:
    """Build an untrained classifier (no pretrained weights are ever downloaded).

    Args:
        arch: One of ``MODEL_NAMES``.
        in_channels: 1 (grey) or 3 (RGB).
        num_classes: Number of output logits.
        mean: Per-channel mean of the training images in ``[0, 1]``; 0.5 when omitted.
        std: Per-channel std of the training images; 0.25 when omitted.
        dropout: Dropout before the head.
        width: SmallCNN only: channels of its first block (the next three have 2×, 4× and 4×).

    Raises:
        ValueError: For an unknown architecture or channel count.
    """
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
    mean = list(mean) if mean is not None else [0.5] * in_channels
    std = [max(float(s), 1e-3) for s in std] if std is not None else [0.25] * in_channels
    if arch not in _BODIES:
        raise ValueError(f"unknown model {arch!r}; choose one of {', '.join(MODEL_NAMES)}")
    body, out_features, target = _BODIES[arch](in_channels, width)
    return ImageClassifier(arch, body, out_features, num_classes, mean, std, target, dropout)
