"""Applications (layer 7) that combine the layers below: the demo, the quantizer benchmark, a real model's
decoder layer through the RTL."""
