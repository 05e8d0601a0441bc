// Boost.Beast's implementation, compiled once for the whole program
// (BOOST_BEAST_SEPARATE_COMPILATION) instead of in every translation unit.
#include <boost/beast/src.hpp>
