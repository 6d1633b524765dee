"""Flow networks of basicsr's video archs at the multigrid schedule's small patches (notes B17, B18).

basicsr 1.4.2's SpyNet cannot run at LR 32 px and below, and BasicVSR++ refuses LR inputs below 64 px, though
the paper trains BasicVSR, IconVSR and BasicVSR++ at LR 32. `enable_small_inputs()` gives both classes a path
for small inputs that leaves every larger input on basicsr's own code, bit for bit.
"""
import math

from basicsr_multigrid.archs.flow_warp import flow_warp  # basicsr's, without a host sync per warp
from basicsr_multigrid.utils.patching import patch


def spynet_below_33px():
    """SpyNet crashes on inputs of 32 px and less (its 0x0 initial flow cannot be upsampled), and it
    would upscale any input below 32 px to 32 px (4x the work at LR 16).

    The initial flow is all zeros, so starting it at the coarsest level's own size and skipping the first
    x2 upsample gives bit-identical flows wherever the stock code runs. Inputs of 16 px and less run the
    pyramid's finest levels only, at their own size (rounded up to the pyramid's multiple), so a patch
    half as wide costs a quarter, as the multigrid cost model assumes.
    """
    import torch
    import torch.nn.functional as F
    from basicsr.archs.spynet_arch import SpyNet

    def process(self, ref, supp, num_levels=6):
        refs, supps = [self.preprocess(ref)], [self.preprocess(supp)]
        for _ in range(num_levels - 1):
            refs.insert(0, F.avg_pool2d(refs[0], kernel_size=2, stride=2, count_include_pad=False))
            supps.insert(0, F.avg_pool2d(supps[0], kernel_size=2, stride=2, count_include_pad=False))
        modules = self.basic_module[len(self.basic_module) - num_levels:]  # the finest levels
        flow = refs[0].new_zeros([refs[0].size(0), 2, refs[0].size(2), refs[0].size(3)])
        for level, (ref_level, supp_level) in enumerate(zip(refs, supps)):
            upsampled = flow if level == 0 else _upsample_flow(flow, ref_level.shape[2:])
            warped = flow_warp(supp_level, upsampled.permute(0, 2, 3, 1), interp_mode='bilinear', padding_mode='border')
            flow = modules[level](torch.cat([ref_level, warped, upsampled], 1)) + upsampled
        return flow

    def _upsample_flow(flow, size):
        upsampled = F.interpolate(flow, scale_factor=2, mode='bilinear', align_corners=True) * 2.0
        pad_bottom, pad_right = size[0] - upsampled.size(2), size[1] - upsampled.size(3)
        if pad_bottom or pad_right:
            upsampled = F.pad(upsampled, pad=[0, pad_right, 0, pad_bottom], mode='replicate')
        return upsampled

    original_forward = SpyNet.__dict__['forward']

    def forward(self, ref, supp):
        h, w = ref.shape[2:]
        if min(h, w) > 16:
            return original_forward(self, ref, supp)
        num_levels = max(2, math.ceil(math.log2(min(h, w))) + 1)  # coarsest level ~1 px, as at 32 px
        multiple = 2**(num_levels - 1)
        h_padded, w_padded = math.ceil(h / multiple) * multiple, math.ceil(w / multiple) * multiple
        ref = F.interpolate(ref, size=(h_padded, w_padded), mode='bilinear', align_corners=False)
        supp = F.interpolate(supp, size=(h_padded, w_padded), mode='bilinear', align_corners=False)
        flow = F.interpolate(self.process(ref, supp, num_levels), size=(h, w), mode='bilinear', align_corners=False)
        # the scale is filled on the device (new_tensor would copy it from the host, a sync per call)
        scale = torch.cat([flow.new_full((1, 1, 1, 1), w / w_padded), flow.new_full((1, 1, 1, 1), h / h_padded)], 1)
        return flow * scale

    patch('B17_spynet_below_33px', SpyNet, 'process', process)
    patch('B17_spynet_below_33px', SpyNet, 'forward', forward)


def basicvsrpp_below_64px():
    """BasicVSR++ asserts LR inputs >= 64 px (notes B18), a SpyNet limit that `spynet_below_33px` removes.

    Inputs of 64 px and more (and CPU-cached long clips) still take basicsr's own forward; smaller ones run
    the same steps (features, flows, second-order propagation, upsampling) without the assert.
    """
    import torch.nn.functional as F
    from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus
    original_forward = BasicVSRPlusPlus.__dict__['forward']

    def forward(self, lqs):
        n, t, c, h, w = lqs.size()
        low_res = lqs if self.is_low_res_input else F.interpolate(
            lqs.view(-1, c, h, w), scale_factor=0.25, mode='bicubic').view(n, t, c, h // 4, w // 4)
        if min(low_res.shape[-2:]) >= 64 or t > self.cpu_cache_length:
            return original_forward(self, lqs)
        self.cpu_cache = False
        self.check_if_mirror_extended(lqs)
        spatial = self.feat_extract(lqs.view(-1, c, h, w))
        feats = {'spatial': list(spatial.view(n, t, *spatial.shape[1:]).unbind(1))}
        flows_forward, flows_backward = self.compute_flow(low_res)
        for iteration in (1, 2):
            for direction in ('backward', 'forward'):
                module = f'{direction}_{iteration}'
                feats[module] = []
                if direction == 'backward':
                    flows = flows_backward
                else:  # a mirror-extended clip has no forward flows: they are the backward ones reversed
                    flows = flows_forward if flows_forward is not None else flows_backward.flip(1)
                feats = self.propagate(feats, flows, module)
        return self.upsample(lqs, feats)

    patch('B18_basicvsrpp_below_64px', BasicVSRPlusPlus, 'forward', forward)


def enable_small_inputs():
    spynet_below_33px()
    basicvsrpp_below_64px()
