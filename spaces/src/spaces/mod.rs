pub mod blocks;
pub mod fbnet;
pub mod mnasnet;
pub mod ofa;
pub mod ofa_net_config;
pub mod singlepath;
