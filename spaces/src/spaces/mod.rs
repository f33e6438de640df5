pub mod blocks;
pub mod fbnet;
pub mod mnasnet;
pub mod ofa;
pub mod singlepath;
