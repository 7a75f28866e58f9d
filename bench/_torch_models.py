"""PyTorch definitions of the pretrained networks in ../shared/data (for the study and
the tests): the CIFAR ResNets of akamaster/pytorch_resnet_cifar10 (option-A shortcuts)
and the MNIST MLP of zhi-fangZhang/idpl_gen, written from their READMEs' descriptions
so that their state_dicts load key for key."""

import torch
import torch.nn.functional as F
from torch import nn


class _Shortcut(nn.Module):
    """Option A: x[:, :, ::2, ::2] with planes // 4 zero channels on each side."""

    def __init__(self, planes):
        super().__init__()
        self.planes = planes

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.planes // 4, self.planes // 4), "constant", 0)


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _Shortcut(planes) if stride != 1 or in_planes != planes else nn.Sequential()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out)


class ResNetCifar(nn.Module):
    def __init__(self, depth=20, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._stage(16, n, 1)
        self.layer2 = self._stage(32, n, 2)
        self.layer3 = self._stage(64, n, 2)
        self.linear = nn.Linear(64, num_classes)

    def _stage(self, planes, n, stride):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.linear(out)


class MnistMLP(nn.Module):
    """784-300-301-302-303-10; L1..L4 without bias, each + BatchNorm1d + ReLU."""

    def __init__(self):
        super().__init__()
        sizes = [784, 300, 301, 302, 303]
        for i in range(4):
            setattr(self, f"L{i + 1}", nn.Linear(sizes[i], sizes[i + 1], bias=False))
            setattr(self, f"bn{i + 1}", nn.BatchNorm1d(sizes[i + 1]))
        self.L5 = nn.Linear(303, 10)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        for i in range(1, 5):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"L{i}")(x)))
        return self.L5(x)
