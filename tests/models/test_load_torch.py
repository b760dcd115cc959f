"""End-to-end PyTorch -> Flax conversion: a plain-torch ResNet, its random weights
written as a .pth, the import_torch CLI, and eval-mode outputs compared to 1e-4.

The torch network is written here from the published architecture (torchvision layout,
IBN-Net placement), independently of `reid_jax.models.resnet`.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch extra not installed")
nn = torch.nn

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from reid_jax.models import load_torch, resnet, zoo  # noqa: E402
from reid_jax.tools import import_torch  # noqa: E402


class TorchIBN(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.half = planes // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x):
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return torch.cat([self.IN(a.contiguous()), self.BN(b.contiguous())], dim=1)


class TorchBlock(nn.Module):
    def __init__(self, kind, inplanes, planes, stride, ibn_a, ibn_b):
        super().__init__()
        self.kind = kind
        expansion = 4 if kind == "bottleneck" else 1
        out = planes * expansion
        if kind == "bottleneck":
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
        else:
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
        self.bn1 = TorchIBN(planes) if ibn_a else nn.BatchNorm2d(planes)
        self.IN = nn.InstanceNorm2d(out, affine=True) if ibn_b else None
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        if self.kind == "bottleneck":
            y = torch.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
        else:
            y = self.bn2(self.conv2(y))
        y = y + (x if self.downsample is None else self.downsample(x))
        if self.IN is not None:
            y = self.IN(y)
        return torch.relu(y)


class TorchResNet(nn.Module):
    def __init__(self, kind, stage_sizes, width, last_stride, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = (
            nn.InstanceNorm2d(width, affine=True) if norm == "ibn_b" else nn.BatchNorm2d(width)
        )
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        expansion = 4 if kind == "bottleneck" else 1
        inplanes = width
        for s, blocks in enumerate(stage_sizes):
            planes = width * 2**s
            stride = 1 if s == 0 else (last_stride if s == 3 else 2)
            layer = []
            for i in range(blocks):
                ibn_a = norm == "ibn_a" and s < 3
                ibn_b = norm == "ibn_b" and s < 2 and 0 < i == blocks - 1
                layer.append(
                    TorchBlock(kind, inplanes, planes, stride if i == 0 else 1, ibn_a, ibn_b)
                )
                inplanes = planes * expansion
            setattr(self, f"layer{s + 1}", nn.Sequential(*layer))
        self.fc = nn.Linear(inplanes, 10)  # ImageNet-style classifier: dropped

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for s in range(4):
            x = getattr(self, f"layer{s + 1}")(x)
        return x


def _randomise(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.affine:
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                m.num_batches_tracked.fill_(100)


@pytest.mark.parametrize(
    ("backbone", "norm", "last_stride"),
    [
        ("resnet50", "bn", 1),
        ("resnet18", "bn", 2),
        ("resnet50", "ibn_a", 1),
        ("resnet50", "ibn_b", 1),
    ],
)
def test_converted_outputs_match_torch(tmp_path, backbone, norm, last_stride):
    stage_sizes, kind = resnet.BACKBONES[backbone]
    stage_sizes = [2, 2, 1, 1]
    torch.manual_seed(0)
    net = TorchResNet(kind, stage_sizes, 8, last_stride, norm).eval()
    _randomise(net, seed=1)
    pth = tmp_path / "model.pth"
    torch.save({"state_dict": net.state_dict()}, pth)

    out_dir = tmp_path / "flax"
    import_torch.main(
        [
            "--in",
            str(pth),
            "--out",
            str(out_dir),
            "--backbone",
            backbone,
            "--norm",
            norm,
            "--width",
            "8",
            "--stage_sizes",
            "2,2,1,1",
        ]
    )
    variables = load_torch.load(str(out_dir))

    x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = net(x).permute(0, 2, 3, 1).numpy()
    model = resnet.resnet(
        backbone, stage_sizes=stage_sizes, width=8, last_stride=last_stride, norm=norm
    )
    got = model.apply(variables, jnp.asarray(x.permute(0, 2, 3, 1).numpy()), train=False)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    # The same weights through ReIDNet + load_into: pooled features = torch's mean.
    reid = zoo.ReIDNet(
        backbone=backbone,
        stage_sizes=tuple(stage_sizes),
        width=8,
        last_stride=last_stride,
        norm=norm,
        neck="none",
    )
    xj = jnp.asarray(x.permute(0, 2, 3, 1).numpy())
    init = jax.jit(lambda x: reid.init(jax.random.key(0, impl="unsafe_rbg"), x, train=False))(xj)
    params, stats = load_torch.load_into(str(out_dir), init["params"], init["batch_stats"])
    out = reid.apply({"params": params, "batch_stats": stats}, xj, train=False)
    np.testing.assert_allclose(out["features"], want.mean(axis=(1, 2)), rtol=1e-4, atol=1e-4)


def test_cli_refuses_wrong_architecture(tmp_path, capsys):
    net = TorchResNet("bottleneck", [2, 2, 1, 1], 8, 1, "ibn_a")
    pth = tmp_path / "ibn.pth"
    torch.save(net.state_dict(), pth)
    with pytest.raises(SystemExit) as info:
        import_torch.main(
            [
                "--in",
                str(pth),
                "--out",
                str(tmp_path / "o"),
                "--width",
                "8",
                "--stage_sizes",
                "2,2,1,1",
            ]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: torch tensor") and err.count("\n") == 1


class _NotWeights:
    """An arbitrary pickled object: what weights_only=True must refuse to load."""

    def __reduce__(self):
        return (print, ("this ran while loading",))


@pytest.mark.parametrize("payload", ["object", "list", "garbage"])
def test_cli_refuses_a_pth_that_is_not_a_state_dict(tmp_path, capsys, payload):
    pth = tmp_path / "bad.pth"
    if payload == "object":
        torch.save({"state_dict": _NotWeights()}, pth)
    elif payload == "list":
        torch.save([torch.zeros(2)], pth)
    else:
        pth.write_bytes(b"not a torch file at all")
    with pytest.raises(SystemExit) as info:
        import_torch.main(["--in", str(pth), "--out", str(tmp_path / "o"), "--width", "8",
                           "--stage_sizes", "2,2,1,1"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error:") and captured.err.count("\n") == 1, captured.err
    assert str(pth) in captured.err
    assert "this ran while loading" not in captured.out + captured.err
