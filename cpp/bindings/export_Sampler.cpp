#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <vector>

#include "Convert.h"
#include "Sampler.h"

namespace py = pybind11;

namespace vaepipe::detail {

namespace {

using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

Array positionsArray(const Sampler& s) {
    const auto n = static_cast<py::ssize_t>(s.params().nParticles);
    const auto dim = static_cast<py::ssize_t>(s.params().dim);
    Array out({n, dim});
    const std::vector<double> p = s.positions();
    std::memcpy(out.mutable_data(), p.data(), p.size() * sizeof(double));
    return out;
}

void setPositions(Sampler& s, const Array& positions) {
    const auto n = s.params().nParticles;
    const auto dim = s.params().dim;
    if (positions.ndim() != 2 || positions.shape(0) != n || positions.shape(1) != dim) {
        throw std::invalid_argument("positions must have shape (n_particles, dim) = (" + std::to_string(n) + ", " +
                                    std::to_string(dim) + ")");
    }
    std::vector<double> v(positions.data(), positions.data() + positions.size());
    s.setPositions(v);
}

}  // namespace

void exportSampler(py::module_& m) {
    py::class_<Sampler>(m, "Sampler")
        .def(py::init([](int nParticles, double boxLength, double temperature, double gamma, int dim,
                         const std::string& boundary, double cutoff, bool tailCorrection,
                         const Rng::State& rngState, double stepSize, const std::string& neighborList,
                         double neighborSkin, bool place, bool pairCache) {
                 return Sampler(makeParams(nParticles, boxLength, temperature, gamma, dim, boundary, cutoff,
                                           tailCorrection),
                                rngState, stepSize, toNeighborMode(neighborList), neighborSkin, place, pairCache);
             }),
             py::arg("n_particles"), py::arg("box_length"), py::arg("temperature"), py::arg("gamma"),
             py::arg("dim"), py::arg("boundary"), py::arg("cutoff"), py::arg("tail_correction"),
             py::arg("rng_state"), py::arg("step_size"), py::arg("neighbor_list"), py::arg("neighbor_skin"),
             py::arg("place"), py::arg("pair_cache"))
        .def("randomize", &Sampler::randomize)
        .def_property("positions", &positionsArray, &setPositions)
        .def("run", &Sampler::run, py::arg("sweeps"), py::call_guard<py::gil_scoped_release>())
        .def(
            "run_trace",
            [](Sampler& s, std::int64_t sweeps, std::int64_t every) {
                if (sweeps < 0 || every <= 0) throw std::invalid_argument("need sweeps >= 0 and every >= 1");
                py::array_t<double> out(static_cast<py::ssize_t>(sweeps / every));
                double* data = out.mutable_data();
                {
                    py::gil_scoped_release release;
                    s.runTrace(sweeps, every, data);
                }
                return out;
            },
            py::arg("sweeps"), py::arg("every"))
        .def(
            "sample",
            [](Sampler& s, std::int64_t count, std::int64_t interval) {
                if (count < 0 || interval <= 0) throw std::invalid_argument("need count >= 0 and interval >= 1");
                const auto n = static_cast<py::ssize_t>(s.params().nParticles);
                const auto dim = static_cast<py::ssize_t>(s.params().dim);
                py::array_t<double> positions({static_cast<py::ssize_t>(count), n, dim});
                py::array_t<double> energies(static_cast<py::ssize_t>(count));
                double* p = positions.mutable_data();
                double* e = energies.mutable_data();
                {
                    py::gil_scoped_release release;
                    s.sample(count, interval, p, e);
                }
                return py::make_tuple(positions, energies);
            },
            py::arg("count"), py::arg("interval"))
        .def_property_readonly("energy", &Sampler::energy)
        .def("recompute_energy", &Sampler::recomputeEnergy)
        .def_property("raw_energy", &Sampler::rawEnergy, &Sampler::setRawEnergy)
        .def_property("neighbor_reference", &Sampler::neighborReference, &Sampler::setNeighborReference)
        .def_property("step_size", &Sampler::stepSize, &Sampler::setStepSize)
        .def_property_readonly("attempted", &Sampler::attempted)
        .def_property_readonly("accepted", &Sampler::accepted)
        .def("set_counters", &Sampler::setCounters, py::arg("attempted"), py::arg("accepted"))
        .def_property("rng_state", &Sampler::rngState, &Sampler::setRngState)
        .def_property_readonly("uses_neighbor_list", &Sampler::usesNeighborList)
        .def_property_readonly("uses_pair_cache", &Sampler::usesPairCache)
        .def_property_readonly("neighbor_skin", &Sampler::neighborSkin)
        .def_property_readonly("neighbor_rebuilds", &Sampler::neighborRebuilds)
        .def_property_readonly("far_trials", &Sampler::farTrials)
        .def_property_readonly("neighbor_refreshes", &Sampler::neighborRefreshes)
        .def_property_readonly("mean_neighbors", &Sampler::meanNeighbors)
        .def_property_readonly("kernel", [](const Sampler& s) { return std::string(s.kernelName()); });
}

}  // namespace vaepipe::detail
