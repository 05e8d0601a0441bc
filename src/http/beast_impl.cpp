// Boost.Beast's and Boost.URL's implementations, compiled once for the whole program
// (BOOST_BEAST_SEPARATE_COMPILATION; Boost.URL's src.hpp), instead of in every TU.
#include <boost/beast/src.hpp>
#include <boost/url/src.hpp>
