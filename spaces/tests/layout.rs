//! The gene layout of a layer-wise space gives exactly the layers its networks have.

use rand::SeedableRng;

#[test]
fn ofa_gene_layouts_reproduce_every_member() {
    for name in ["ofa-mbv3-w1.0", "ofa-mbv3-w1.2", "ofa-proxyless-w1.3"] {
        let s = spaces::space(name).unwrap();
        let layout = s.gene_layout().expect("OFA spaces are built layer by layer");
        let rg = s.resolution_gene().unwrap();
        assert_eq!(layout.resolution_gene, Some(rg));
        assert_eq!(layout.resolutions, s.resolutions());
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (lo, hi) = s.extremes();
        for g in [lo, hi].into_iter().chain((0..300).map(|_| s.sample(&mut rng))) {
            assert_eq!(s.resolutions()[g.0[rg] as usize], s.resolution(&g));
            assert!(layout.reproduces(&g, &s.network(&g)), "{name}: {}", s.to_json(&g));
        }
        // The layout is not vacuous: a different depth changes the layers it gives.
        let (lo, hi) = s.extremes();
        assert!(!layout.reproduces(&lo, &s.network(&hi)));
    }
}

#[test]
fn fbnet_gene_layouts_reproduce_every_member() {
    for name in ["fbnet", "fbnet-cifar100"] {
        let s = spaces::space(name).unwrap();
        let layout = s.gene_layout().expect("FBNet is layer-wise");
        assert_eq!((layout.resolution_gene, layout.resolutions.clone()), (None, s.resolutions()));
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let (lo, hi) = s.extremes();
        for g in [lo.clone(), hi.clone()].into_iter().chain((0..300).map(|_| s.sample(&mut rng))) {
            assert!(layout.reproduces(&g, &s.network(&g)), "{name}: {}", s.to_json(&g));
        }
        assert!(!layout.reproduces(&lo, &s.network(&hi)));
    }
}

#[test]
fn spaces_without_a_layout_say_so() {
    assert!(spaces::space("mnasnet").unwrap().gene_layout().is_none());
    assert!(spaces::space("fbnet").unwrap().resolution_gene().is_none());
}
